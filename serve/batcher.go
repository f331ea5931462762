package serve

import (
	"runtime"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// Batched scoring. Ranking the whole catalog reads the whole item matrix
// (100,000 x 65 float32 is 26 MB) for one query: it is bound by memory
// bandwidth, not arithmetic. Queries that arrive together are therefore
// scored in one pass: each block of blockItems rows is read from memory
// once and scored for every query of the batch while it is still in the
// core's cache. Every query's logits come from the same kernel call on
// the same rows as a lone query's (scoreRows on a block), so a batched
// answer is bit for bit the answer the query would get alone, with its
// own k, bias, boosts, filter and deadline (TestBatchedEqualsSingle).

// DefaultBatchQueries is how many queries one pass scores at most, unless
// LoadOptions.BatchQueries says otherwise: 1, each request alone. On the
// 2-core host, open loop at 250 req/s from a separate process, batches of
// up to 8 doubled p99 (20.7 ms against 10.9 ms alone, bench/README.md):
// the pass yields its core between blocks so that waiting requests can
// join it, and those yields cost more than the shared reads save while
// the load generator shares the cores. Batching pays in bursts of many
// concurrent queries (BenchmarkBurstBatchedVsAlone: 2x); turn it on where
// measured. With int8 scoring (the default) a pass is bound by arithmetic,
// not memory, and batches of 8 found 750-1,200 req/s at p99 < 10 ms where
// each request alone found 950-1,500 (bench/README.md, 2026-12-05).
const DefaultBatchQueries = 1

// batcher gathers concurrent full-catalog ranking jobs into passes. There
// is no timer: a job that finds fewer than passes passes running starts one
// at once (with whatever is waiting), so an idle replica adds no latency;
// jobs arriving while every pass is busy wait, and the goroutine of the
// first of them leads the next pass when one ends, taking up to max jobs.
type batcher struct {
	max    int // jobs per pass
	passes int // passes running at once
	mu     sync.Mutex
	run    int // passes running
	queue  []*scoreJob
	// passesDone and jobsDone count passes and the jobs they scored (their
	// ratio is the mean batch).
	passesDone, jobsDone *metrics.Counter
}

// scoreJob is one ranking job and its outcome.
type scoreJob struct {
	spec *scoreSpec
	top  []scored
	err  error
	// wake receives nil when the job is done, or the batch the job's
	// goroutine must score (which holds the job).
	wake chan []*scoreJob
}

func newBatcher(perPass, passes int) *batcher {
	return &batcher{max: max(perPass, 1), passes: max(passes, 1), passesDone: new(metrics.Counter), jobsDone: new(metrics.Counter)}
}

// rank returns what rankTop(s) returns, scoring s in a pass with the jobs
// that are waiting with it. s must rank the whole matrix (s.idx nil).
func (b *batcher) rank(s *scoreSpec) ([]scored, error) {
	j := &scoreJob{spec: s, wake: make(chan []*scoreJob, 1)}
	b.mu.Lock()
	if b.run < b.passes {
		b.run++
		batch := append([]*scoreJob{j}, b.takeLocked(j, b.max-1)...)
		b.mu.Unlock()
		b.lead(j, batch)
		return j.top, j.err
	}
	b.queue = append(b.queue, j)
	b.mu.Unlock()
	if batch := <-j.wake; batch != nil {
		b.lead(j, batch)
	}
	return j.top, j.err
}

// takeLocked removes from the queue up to n jobs that score the same
// matrix as j (the order of the others is kept).
func (b *batcher) takeLocked(j *scoreJob, n int) []*scoreJob {
	var out []*scoreJob
	keep := b.queue[:0]
	for _, q := range b.queue {
		if len(out) < n && sameMatrix(q.spec, j.spec) {
			out = append(out, q)
		} else {
			keep = append(keep, q)
		}
	}
	clear(b.queue[len(keep):])
	b.queue = keep
	return out
}

// lead scores batch (which holds self), wakes its other jobs, and hands
// the next pass to the first waiting job, if any.
func (b *batcher) lead(self *scoreJob, batch []*scoreJob) {
	specs := make([]*scoreSpec, len(batch))
	for i, j := range batch {
		specs[i] = j.spec
	}
	tops, errs := rankBatch(specs)
	b.passesDone.Inc()
	b.jobsDone.Add(len(batch))
	for i, j := range batch {
		j.top, j.err = tops[i], errs[i]
	}
	b.mu.Lock()
	var next []*scoreJob
	if len(b.queue) > 0 {
		first := b.queue[0]
		b.queue = b.queue[1:]
		next = append([]*scoreJob{first}, b.takeLocked(first, b.max-1)...)
	} else {
		b.run--
	}
	b.mu.Unlock()
	for _, j := range batch {
		if j != self {
			j.wake <- nil
		}
	}
	if next != nil {
		next[0].wake <- next
	}
}

// sameMatrix reports whether a and b score the same item matrix (and so
// can share a pass).
func sameMatrix(a, b *scoreSpec) bool {
	return sameSlice(a.mat, b.mat) && len(a.cv) == len(b.cv) && a.quant == b.quant
}

// rankBatch ranks every spec (all over the same whole matrix) in one pass
// over it, in shards (the most any spec asks for): each block of rows is
// scored for every spec still running while it is in cache. A spec whose
// deadline passes gets errDeadline and is left out of the rest of the
// pass.
func rankBatch(specs []*scoreSpec) ([][]scored, []error) {
	s0 := specs[0]
	n := len(s0.mat) / (len(s0.cv) + 1)
	shards := 1
	for _, s := range specs {
		shards = max(shards, s.shards)
	}
	shards = max(1, min(shards, n/blockItems))
	tops := make([][]*topK, shards) // per shard, per spec
	dead := make([][]bool, shards)
	var wg sync.WaitGroup
	for sh := range shards {
		tops[sh], dead[sh] = make([]*topK, len(specs)), make([]bool, len(specs))
		for q, s := range specs {
			tops[sh][q] = newTopK(s.rankK())
		}
		lo, hi := n*sh/shards, n*(sh+1)/shards
		if sh == shards-1 {
			scoreBatchShard(specs, tops[sh], dead[sh], lo, hi)
			continue
		}
		wg.Go(func() { scoreBatchShard(specs, tops[sh], dead[sh], lo, hi) })
	}
	wg.Wait()
	out, errs := make([][]scored, len(specs)), make([]error, len(specs))
	for q, s := range specs {
		all := newTopK(s.rankK())
		for sh := range shards {
			if dead[sh][q] {
				errs[q] = errDeadline
			}
			for _, c := range tops[sh][q].kept() {
				all.offer(c)
			}
			tops[sh][q].release()
		}
		if errs[q] == nil {
			out[q] = s.finish(all)
		} else {
			all.release()
		}
	}
	return out, errs
}

// yieldBlocks is how many blocks a pass scores between two yields of its
// core: 8 x 1,024 rows of dim 64 are 2 MB, a fifth of a millisecond
// alone on the 2-core host.
const yieldBlocks = 8

// scoreBatchShard offers the items [lo, hi) of the matrix to each spec's
// top, block by block; dead marks the specs whose deadline passed.
func scoreBatchShard(specs []*scoreSpec, tops []*topK, dead []bool, lo, hi int) {
	qs := make([]query, len(specs))
	for q, s := range specs {
		qs[q] = s.query()
	}
	buf := make([]float32, min(blockItems, hi-lo))
	for b, n := lo, 1; b < hi; b, n = b+blockItems, n+1 {
		e := min(b+blockItems, hi)
		live := 0
		for q, s := range specs {
			if dead[q] {
				continue
			}
			if s.expired != nil && s.expired() {
				dead[q] = true
				continue
			}
			live++
			s.scoreBlock(buf[:e-b], b, &qs[q])
			s.offerBlock(tops[q], buf[:e-b], b)
		}
		if live == 0 {
			return
		}
		// Let requests waiting for this core reach the queue: a pass
		// runs for milliseconds, far below Go's preemption, so without
		// this the goroutines of requests that arrived meanwhile only
		// run once it ends, find no queue, and every pass holds one
		// query. Every yieldBlocks blocks, not every block: a yield (and
		// the idle core it wakes) cost 12% of a loaded replica's CPU.
		if n%yieldBlocks == 0 {
			runtime.Gosched()
		}
	}
}
