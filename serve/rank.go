package serve

import "slices"

// scored is one candidate and its logit.
type scored struct {
	idx   int
	logit float32
}

// topK keeps the k best candidates offered, best meaning bestFirst's order
// (the highest logit, ties to the lowest index), whatever the order of the
// offers. Candidates are appended; whenever 2k have gathered, the k best
// are selected in place (linear time, selectBest). Once k are known, a
// candidate must beat the worst of them, so most are refused by one
// comparison. (A min-heap of k paid a sift on every candidate it took:
// 13% of a loaded replica's CPU.) NaN logits are never kept.
type topK struct {
	k     int
	items []scored
	full  bool    // k have been kept; worst is the worst of them
	worst scored  // a candidate must beat it (bestFirst) to be taken
	cand  []int32 // offerBlock's scratch: the items of a block not below the worst
}

// refuses says whether s cannot be among the k best.
func (t *topK) refuses(s scored) bool {
	return t.k == 0 || s.logit != s.logit || (t.full && bestFirst(s, t.worst) >= 0)
}

// offer considers one candidate.
func (t *topK) offer(s scored) {
	if !t.refuses(s) {
		t.take(s)
	}
}

// take adds s, which t does not refuse.
func (t *topK) take(s scored) {
	t.items = append(t.items, s)
	if len(t.items) >= 2*t.k {
		t.trim()
	}
}

// kept returns the k best offered (all of them if fewer), in no order.
func (t *topK) kept() []scored {
	if len(t.items) > t.k {
		t.trim()
	}
	return t.items
}

// trim keeps the k best of items and notes the worst of them.
func (t *topK) trim() {
	selectBest(t.items, t.k)
	t.items = t.items[:t.k]
	t.full, t.worst = true, t.items[0]
	for _, c := range t.items[1:] {
		if bestFirst(c, t.worst) > 0 {
			t.worst = c
		}
	}
}

// selectBest reorders a so that a[:k] holds its k best (bestFirst), in no
// order: quickselect with a median-of-three pivot.
func selectBest(a []scored, k int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if bestFirst(a[mid], a[lo]) < 0 {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if bestFirst(a[hi], a[lo]) < 0 {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if bestFirst(a[mid], a[hi]) < 0 {
			a[mid], a[hi] = a[hi], a[mid]
		}
		pivot, store := a[hi], lo // the median, at hi
		for i := lo; i < hi; i++ {
			if bestFirst(a[i], pivot) < 0 {
				a[i], a[store] = a[store], a[i]
				store++
			}
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

// sorted returns the kept candidates, best first (ties by index).
func (t *topK) sorted() []scored {
	out := slices.Clone(t.kept())
	slices.SortFunc(out, bestFirst)
	return out
}

// bestFirst orders candidates by logit, highest first, ties by index.
func bestFirst(a, b scored) int {
	switch {
	case a.logit > b.logit:
		return -1
	case a.logit < b.logit:
		return 1
	}
	return a.idx - b.idx
}
