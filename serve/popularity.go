package serve

import (
	"sync"
)

// Popularity counts engagements per canvas from the events stream, so a
// replica has a popularity fallback before any model arrives. It keeps
// each canvas' items ranked as it counts (a count grows by one, so an item
// moves up a few places at most), so the fallback costs O(k) when the
// replica is overloaded and needs it most.
type Popularity struct {
	mu       sync.Mutex
	canvases map[string]*ranking // canvas ("" for all) -> ranking
}

// ranking is items ordered by engagements (then id), with each item's
// place.
type ranking struct {
	items []Item
	pos   map[string]int
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
			r = &ranking{pos: map[string]int{}}
			p.canvases[c] = r
		}
		r.add(item)
	}
}

// add counts one engagement of id and moves it up to its place.
func (r *ranking) add(id string) {
	i, ok := r.pos[id]
	if !ok {
		i = len(r.items)
		r.items = append(r.items, Item{ID: id})
	}
	r.items[i].Score++
	for i > 0 && before(r.items[i], r.items[i-1]) {
		r.items[i], r.items[i-1] = r.items[i-1], r.items[i]
		r.pos[r.items[i].ID] = i
		i--
	}
	r.pos[id] = i
}

func before(a, b Item) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ID < b.ID
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
