package serve

import (
	"container/heap"
	"sort"
)

// scored is one candidate and its logit.
type scored struct {
	idx   int
	logit float32
}

// topK keeps the k best candidates seen; the worst is at the root.
type topK struct {
	k     int
	items []scored
}

func (t *topK) Len() int           { return len(t.items) }
func (t *topK) Less(i, j int) bool { return t.items[i].logit < t.items[j].logit }
func (t *topK) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topK) Push(x any)         { t.items = append(t.items, x.(scored)) }
func (t *topK) Pop() any {
	n := len(t.items) - 1
	x := t.items[n]
	t.items = t.items[:n]
	return x
}

// offer considers one candidate.
func (t *topK) offer(s scored) {
	if len(t.items) < t.k {
		heap.Push(t, s)
		return
	}
	if s.logit > t.items[0].logit {
		t.items[0] = s
		heap.Fix(t, 0)
	}
}

// sorted returns the kept candidates, best first.
func (t *topK) sorted() []scored {
	out := append([]scored(nil), t.items...)
	sort.Slice(out, func(i, j int) bool { return out[i].logit > out[j].logit })
	return out
}
