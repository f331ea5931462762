package serve

import (
	"sync"
)

// Popularity counts engagements per canvas from the events stream, so a
// replica has a popularity fallback before any model arrives. It keeps
// each canvas' items ranked as it counts, in O(1) per engagement (an
// item moves to the front of the run of items with its old count), so
// reading the top k costs O(k) when the replica is overloaded and needs
// the fallback most. Items with equal counts keep no particular order.
type Popularity struct {
	mu       sync.Mutex
	canvases map[string]*ranking // canvas ("" for all) -> ranking
}

// ranking is items ordered by engagements, each item's place, and where
// the run of items with each count starts.
type ranking struct {
	items []Item
	pos   map[string]int
	start map[int]int // count -> index of the first item with it
}

// NewPopularity returns an empty counter.
func NewPopularity() *Popularity {
	return &Popularity{canvases: map[string]*ranking{}}
}

// Observe counts one event if it is an engagement.
func (p *Popularity) Observe(canvas, action, item string) {
	if item == "" || action == "impression" || action == "dismiss" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range []string{canvas, ""} {
		r := p.canvases[c]
		if r == nil {
			r = &ranking{pos: map[string]int{}, start: map[int]int{}}
			p.canvases[c] = r
		}
		r.add(item)
	}
}

// add counts one engagement of id: it swaps places with the first item of
// its count's run, which then starts one later, and joins the end of the
// next count's run.
func (r *ranking) add(id string) {
	i, ok := r.pos[id]
	if !ok {
		i = len(r.items)
		r.items = append(r.items, Item{ID: id})
		r.pos[id] = i
		if _, ok := r.start[0]; !ok {
			r.start[0] = i
		}
	}
	n := int(r.items[i].Score)
	j := r.start[n]
	r.items[i], r.items[j] = r.items[j], r.items[i]
	r.pos[r.items[i].ID], r.pos[r.items[j].ID] = i, j
	if j+1 < len(r.items) && int(r.items[j+1].Score) == n {
		r.start[n] = j + 1
	} else {
		delete(r.start, n)
	}
	r.items[j].Score++
	if _, ok := r.start[n+1]; !ok {
		r.start[n+1] = j
	}
}

// Top returns the k most engaged items of canvas (all canvases when it has
// none yet) that keep allows (nil allows all), best first.
func (p *Popularity) Top(canvas string, k int, keep func(id string) bool) []Item {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.canvases[canvas]
	if r == nil || len(r.items) == 0 {
		r = p.canvases[""]
	}
	out := make([]Item, 0, k)
	if r == nil {
		return out
	}
	for _, it := range r.items {
		if len(out) == k {
			break
		}
		if keep == nil || keep(it.ID) {
			out = append(out, it)
		}
	}
	return out
}
