package serve

import (
	"errors"
	"slices"
	"sync"

	"github.com/viterin/vek/vek32"
)

// The scoring kernel: exact top-k by dot product over the contiguous item
// matrix, in parallel shards. Go does not vectorise loops, so the inner
// product uses vek's AVX2 kernel (a pure-Go kernel on CPUs without AVX2);
// see kernel_timing_test.go for its speed against a scalar Go loop and
// the machine's memory bandwidth.

// blockItems is how many items a shard scores between two deadline checks
// (and into one buffer before offering them to its heap). vek runs a
// matrix-vector product of fewer than 100,000 multiply-adds on the calling
// goroutine; 1024 rows of dim 64 stay under that.
const blockItems = 1024

// errDeadline is returned when scoring passes its deadline.
var errDeadline = errors.New("deadline passed while scoring")

// Scores writes the logit of every item of mat (rows of len(cv)+1: the
// weights, then the item bias) against the context vector cv into dst,
// without the context's bias. It is the kernel the replica ranks with,
// exported for the serving benchmark.
func Scores(dst, mat, cv []float32) {
	scoreRows(dst, mat, append(cv[:len(cv):len(cv)], 1))
}

// scoreRows is Scores with the context vector extended by a 1 (which
// picks up each item's bias): one matrix-vector product per block of rows.
func scoreRows(dst, mat, cv1 []float32) {
	d := len(cv1)
	n := len(mat) / d
	for lo := 0; lo < n; lo += blockItems {
		hi := min(lo+blockItems, n)
		vek32.MatMul_Into(dst[lo:hi], mat[lo*d:hi*d], cv1, d)
	}
}

// scoreSpec is one ranking job over an item matrix.
type scoreSpec struct {
	mat  []float32
	cv   []float32
	bias float32
	// boosts are the memory terms of a few items, sorted by item index.
	boosts []boost
	k      int
	// idx restricts scoring to these item indexes; nil scores every item.
	idx []int
	// allow is asked only about items good enough to enter the top k; nil
	// allows every item.
	allow func(i int) bool
	// shards is how many goroutines share the work.
	shards int
	// expired reports whether the deadline has passed.
	expired func() bool
	// quant, when set, is the int8 copy of mat: the pass ranks by it and
	// the best rankK candidates are re-ranked exactly (quant.go).
	quant *quantMatrix
}

// query is a spec's context vector in the forms its kernel reads: extended
// by a 1 (which picks up each item's bias), or quantized for quant.
type query struct {
	cv1    []float32
	q      []int8
	qscale float32
}

func (s *scoreSpec) query() query {
	q := query{cv1: append(s.cv[:len(s.cv):len(s.cv)], 1)}
	if s.quant != nil {
		q.q, q.qscale = quantizeQuery(s.cv)
	}
	return q
}

// scoreBlock writes the logits (boosts added, bias not) of the items
// [b, b+len(dst)) of the matrix into dst: exact, or by quant.
func (s *scoreSpec) scoreBlock(dst []float32, b int, q *query) {
	if s.quant != nil {
		s.quant.scores(dst, b, q.q, q.qscale)
	} else {
		d := len(q.cv1)
		scoreRows(dst, s.mat[b*d:(b+len(dst))*d], q.cv1)
	}
	addBoosts(dst, b, s.boosts)
}

// rankK is how many candidates the pass keeps: k, or the re-rank depth of
// a quantized pass.
func (s *scoreSpec) rankK() int {
	if s.quant != nil {
		return rerankDepth(s.k)
	}
	return s.k
}

// finish returns the k best of the pass's candidates, best first:
// re-ranked by their exact logits after a quantized pass. It releases top.
func (s *scoreSpec) finish(top *topK) []scored {
	var best []scored
	if s.quant != nil {
		best = s.rerank(top)
	} else {
		best = top.sorted()
	}
	best = slices.Clone(best)
	top.release()
	return best
}

// rankTop returns the k best allowed items, best first.
func rankTop(s *scoreSpec) ([]scored, error) {
	n := len(s.mat) / (len(s.cv) + 1)
	if s.idx != nil {
		n = len(s.idx)
	}
	shards := max(1, min(s.shards, n/blockItems))
	if shards == 1 {
		top := newTopK(s.rankK())
		if err := s.scoreShard(top, 0, n); err != nil {
			top.release()
			return nil, err
		}
		return s.finish(top), nil
	}
	tops := make([]*topK, shards)
	errs := make([]error, shards)
	var wg sync.WaitGroup
	for j := range shards {
		tops[j] = newTopK(s.rankK())
		lo, hi := n*j/shards, n*(j+1)/shards
		wg.Go(func() { errs[j] = s.scoreShard(tops[j], lo, hi) })
	}
	wg.Wait()
	all := newTopK(s.rankK())
	for _, t := range tops {
		for _, c := range t.kept() {
			all.offer(c)
		}
		t.release()
	}
	if err := errors.Join(errs...); err != nil {
		all.release()
		return nil, errDeadline
	}
	return s.finish(all), nil
}

// scoreShard offers the items [lo, hi) (of the matrix, or of idx) to top.
func (s *scoreSpec) scoreShard(top *topK, lo, hi int) error {
	d := len(s.cv) + 1
	q := s.query()
	top.buf = slices.Grow(top.buf[:0], blockItems)
	buf := top.buf[:min(blockItems, hi-lo)]
	for b := lo; b < hi; b += blockItems {
		if s.expired != nil && s.expired() {
			return errDeadline
		}
		e := min(b+blockItems, hi)
		if s.idx == nil {
			s.scoreBlock(buf[:e-b], b, &q)
		} else {
			for j, i := range s.idx[b:e] {
				row := s.mat[i*d : (i+1)*d : (i+1)*d]
				buf[j] = vek32.Dot(s.cv, row[:d-1]) + row[d-1]
				if k, ok := slices.BinarySearchFunc(s.boosts, int32(i), func(x boost, t int32) int { return int(x.idx - t) }); ok {
					buf[j] += s.boosts[k].z
				}
			}
		}
		s.offerBlock(top, buf[:e-b], b)
	}
	return nil
}

// offerBlock offers the logits of the block of items starting at b (of the
// matrix, or of idx) to top. Once top is full, an item must beat the worst
// it keeps, which only rises: the items not below the worst at the start
// of the block are found eight at a time (above), and only they are
// offered, in order (comparing every item took as long as the int8
// kernel).
func (s *scoreSpec) offerBlock(top *topK, logits []float32, b int) {
	j := 0
	if top.full {
		if cap(top.cand) < len(logits) {
			top.cand = make([]int32, len(logits))
		}
		m, n := above(top.cand[:len(logits)], logits, s.bias, top.thr)
		for _, c := range top.cand[:n] {
			s.offerItem(top, logits[c]+s.bias, b, int(c))
		}
		j = m
	}
	for ; j < len(logits); j++ {
		s.offerItem(top, logits[j]+s.bias, b, j)
	}
}

// offerItem offers item j of the block starting at b, of logit z.
func (s *scoreSpec) offerItem(top *topK, z float32, b, j int) {
	i := b + j
	if s.idx != nil {
		i = s.idx[b+j]
	}
	c := scored{idx: i, logit: z}
	if !top.refuses(c) && (s.allow == nil || s.allow(i)) {
		top.take(c)
	}
}
