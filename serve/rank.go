package serve

import "slices"

// scored is one candidate and its logit.
type scored struct {
	idx   int
	logit float32
}

// topK keeps the k best candidates seen in a min-heap: the worst kept is
// at the root, so most candidates are refused by one comparison.
type topK struct {
	k     int
	items []scored
	cand  []int32 // offerBlock's scratch: the items of a block above the worst
}

// offer considers one candidate.
func (t *topK) offer(s scored) {
	if len(t.items) < t.k {
		t.items = append(t.items, s)
		t.up(len(t.items) - 1)
		return
	}
	if s.logit > t.items[0].logit {
		t.items[0] = s
		t.down(0)
	}
}

func (t *topK) up(i int) {
	h := t.items
	for i > 0 {
		p := (i - 1) / 2
		if h[p].logit <= h[i].logit {
			return
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func (t *topK) down(i int) {
	h := t.items
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].logit < h[c].logit {
			c++
		}
		if h[i].logit <= h[c].logit {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// sorted returns the kept candidates, best first (ties by index).
func (t *topK) sorted() []scored {
	out := slices.Clone(t.items)
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
