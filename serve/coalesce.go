package serve

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// coalescer shares whole-catalog scans between concurrent requests.
// Ranking is bound by memory bandwidth: every request streams the whole
// item matrix. When more requests want the same matrix than there are
// cores, the waiting ones form one batch that streams the matrix once,
// block by block, each block scored for every request of the batch while
// it is in cache. A request never waits for a batch to fill: a batch
// starts as soon as a core is free, with whoever joined by then.
type coalescer struct {
	mu      sync.Mutex
	free    *sync.Cond
	running int // batches being scanned
	max     int // at most this many at once
	pending map[*float32]*scanBatch
	joined  atomic.Int64 // requests that joined another's batch
}

// maxBatchScans bounds the requests of one batch.
const maxBatchScans = 16

type scanBatch struct {
	mat  []float32
	jobs []*scanJob
	done chan struct{}
}

type scanJob struct {
	spec *scoreSpec
	top  *topK
	err  error
}

func newCoalescer() *coalescer {
	c := &coalescer{max: runtime.GOMAXPROCS(0), pending: map[*float32]*scanBatch{}}
	c.free = sync.NewCond(&c.mu)
	return c
}

// rank is rankTop for a one-shard scan of the whole matrix, shared with
// the concurrent scans of the same matrix.
func (c *coalescer) rank(s *scoreSpec) ([]scored, error) {
	if len(s.mat) == 0 {
		return nil, nil
	}
	job := &scanJob{spec: s, top: &topK{k: s.k}}
	key := &s.mat[0]
	c.mu.Lock()
	if b := c.pending[key]; b != nil && len(b.jobs) < maxBatchScans {
		b.jobs = append(b.jobs, job)
		c.joined.Add(1)
		c.mu.Unlock()
		<-b.done
		return job.result()
	}
	b := &scanBatch{mat: s.mat, jobs: []*scanJob{job}, done: make(chan struct{})}
	if c.running >= c.max {
		c.pending[key] = b
		for c.running >= c.max {
			c.free.Wait()
		}
		if c.pending[key] == b {
			delete(c.pending, key)
		}
	}
	c.running++
	c.mu.Unlock()
	b.scan()
	c.mu.Lock()
	c.running--
	c.free.Broadcast()
	c.mu.Unlock()
	close(b.done)
	return job.result()
}

func (j *scanJob) result() ([]scored, error) {
	if j.err != nil {
		return nil, j.err
	}
	return j.top.sorted(), nil
}

// scan streams the matrix once for every job of the batch; a job whose
// deadline passes drops out with errDeadline.
func (b *scanBatch) scan() {
	d := len(b.jobs[0].spec.cv) + 1
	n := len(b.mat) / d
	cv1 := make([][]float32, len(b.jobs))
	for i, j := range b.jobs {
		cv1[i] = append(j.spec.cv[:len(j.spec.cv):len(j.spec.cv)], 1)
	}
	buf := make([]float32, min(blockItems, n))
	for lo := 0; lo < n; lo += blockItems {
		hi := min(lo+blockItems, n)
		live := 0
		for i, j := range b.jobs {
			if j.err != nil {
				continue
			}
			if j.spec.expired != nil && j.spec.expired() {
				j.err = errDeadline
				continue
			}
			live++
			scoreRows(buf[:hi-lo], b.mat[lo*d:hi*d], cv1[i])
			j.spec.offerBlock(j.top, buf[:hi-lo], lo)
		}
		if live == 0 {
			return
		}
	}
}
