package serve

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sync"
)

// scored is one candidate and its logit.
type scored struct {
	idx   int
	logit float32
}

// topK keeps the k best candidates offered, best meaning bestFirst's order
// (the highest logit, ties to the lowest index), whatever the order of the
// offers. Candidates are kept as rank keys (rankKey: one integer
// comparison orders two of them) and appended; whenever 2k have gathered,
// the k best are selected in place (linear time, selectBest). Once k are
// known, a candidate must beat the worst of them, so most are refused by
// one comparison. (A min-heap of k paid a sift on every candidate it took:
// 13% of a loaded replica's CPU; selecting with a three-way comparison of
// logit and index, branching on each, still cost 40% of the int8 kernel.)
// NaN logits are never kept.
type topK struct {
	k     int
	keys  []uint64
	full  bool    // k have been kept; worst is the worst of them
	worst uint64  // a candidate's key must be above it to be taken
	thr   float32 // the logit of worst
	// Scratch, kept with the topK in topKs between requests.
	cand []int32   // offerBlock's: the items of a block not below the worst
	buf  []float32 // scoreShard's: a block's logits
	out  []scored  // what kept returns
}

// topKs holds a request's top-k and its scratch between requests: 20 KB
// at the re-rank depth of a top 100, a third of what a request allocated.
var topKs = sync.Pool{New: func() any { return new(topK) }}

// newTopK returns an empty top-k of k, from topKs.
func newTopK(k int) *topK {
	t := topKs.Get().(*topK)
	t.k, t.keys, t.full, t.worst, t.thr = k, t.keys[:0], false, 0, 0
	return t
}

// release returns t to topKs: neither t nor what its kept, sorted and
// the re-rank returned may be used after.
func (t *topK) release() {
	if cap(t.keys)+cap(t.out) <= 1<<16 {
		topKs.Put(t)
	}
}

// refuses says whether s cannot be among the k best.
func (t *topK) refuses(s scored) bool {
	return t.k == 0 || s.logit != s.logit || (t.full && rankKey(s) <= t.worst)
}

// offer considers one candidate.
func (t *topK) offer(s scored) {
	if !t.refuses(s) {
		t.take(s)
	}
}

// take adds s, which t does not refuse.
func (t *topK) take(s scored) {
	if cap(t.keys) < 2*t.k {
		t.keys = slices.Grow(t.keys, 2*t.k-len(t.keys))
	}
	t.keys = append(t.keys, rankKey(s))
	if len(t.keys) >= 2*t.k {
		t.trim()
	}
}

// kept returns the k best offered (all of them if fewer), in no order,
// in t's scratch (valid until t is offered more or released).
func (t *topK) kept() []scored {
	if len(t.keys) > t.k {
		t.trim()
	}
	t.out = slices.Grow(t.out[:0], len(t.keys))[:len(t.keys)]
	for i, key := range t.keys {
		t.out[i] = fromRankKey(key)
	}
	return t.out
}

// trim keeps the k best keys and notes the worst of them.
func (t *topK) trim() {
	selectBest(t.keys, t.k)
	t.keys = t.keys[:t.k]
	t.full, t.worst = true, slices.Min(t.keys)
	t.thr = fromRankKey(t.worst).logit
}

// selectBest reorders a so that a[:k] holds its k largest keys, in no
// order: quickselect with a median-of-three pivot, partitioning without
// a branch on the comparison (its outcome is a coin toss, and
// mispredicting it cost more than the rest of the partition).
func selectBest(a []uint64, k int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid] > a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] > a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[mid] > a[hi] {
			a[mid], a[hi] = a[hi], a[mid]
		}
		pivot, store := a[hi], lo // the median, at hi
		for i := lo; i < hi; i++ {
			x := a[i]
			a[i], a[store] = a[store], x
			_, above := bits.Sub64(pivot, x, 0) // 1 when x > pivot
			store += int(above)
		}
		a[store], a[hi] = a[hi], a[store]
		switch {
		case store > k:
			hi = store - 1
		case store < k-1:
			lo = store + 1
		default:
			return
		}
	}
}

// sorted returns the kept candidates, best first (ties by index), in t's
// scratch.
func (t *topK) sorted() []scored {
	return bestSorted(t.kept(), t.k, t.keys)
}

// bestSorted returns the k best of a (all of them if fewer), best first,
// reusing a, and keys for their rank keys.
func bestSorted(a []scored, k int, keys []uint64) []scored {
	keys = slices.Grow(keys[:0], len(a))[:len(a)]
	for i, s := range a {
		keys[i] = rankKey(s)
	}
	if len(keys) > k {
		selectBest(keys, k)
		keys = keys[:k]
	}
	slices.Sort(keys)
	out := a[:len(keys)]
	for i, key := range keys {
		out[len(keys)-1-i] = fromRankKey(key)
	}
	return out
}

// bestFirst orders candidates by logit, highest first, ties by index
// (-0 counts as just below +0).
func bestFirst(a, b scored) int {
	return cmp.Compare(rankKey(b), rankKey(a))
}

// rankKey is s as an integer that is larger the better s is: its logit's
// bits made monotonic (negative logits flipped whole, positive ones with
// their sign bit set), then its index complemented (a lower index is
// better). Indexes are below 2^32.
func rankKey(s scored) uint64 {
	b := math.Float32bits(s.logit)
	b ^= uint32(int32(b)>>31) | 1<<31
	return uint64(b)<<32 | uint64(^uint32(s.idx))
}

// fromRankKey is the candidate of a rank key.
func fromRankKey(key uint64) scored {
	b := uint32(key >> 32)
	b ^= uint32(int32(^b)>>31) | 1<<31
	return scored{idx: int(^uint32(key)), logit: math.Float32frombits(b)}
}
