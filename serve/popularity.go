package serve

import (
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// Popularity counts engagements per canvas from the events stream, so a
// replica has a popularity fallback before any model arrives. It keeps
// each canvas' items ranked as it counts, in O(1) per engagement (an
// item moves to the front of the run of items with its old count), so
// reading the top k costs O(k) when the replica is overloaded and needs
// the fallback most. Items with equal counts keep no particular order.
//
// Item ids come from untrusted events, so each canvas keeps at most
// maxItems items: a new item beyond them takes the place of one of the
// least engaged (the last of the ranking, O(1)), which is counted in
// evicted. A popular item is engaged again and again, so it stays.
type Popularity struct {
	mu       sync.Mutex
	canvases map[string]*ranking // canvas ("" for all) -> ranking
	maxItems int
	evicted  *metrics.Counter
}

// DefaultPopularityItems is the default bound of items per canvas.
const DefaultPopularityItems = 100000

// ranking is items ordered by engagements, each item's place, and where
// the run of items with each count starts.
type ranking struct {
	items []Item
	pos   map[string]int
	start map[int]int // count -> index of the first item with it
}

// NewPopularity returns an empty counter of at most
// DefaultPopularityItems items per canvas.
func NewPopularity() *Popularity {
	return &Popularity{canvases: map[string]*ranking{}, maxItems: DefaultPopularityItems, evicted: new(metrics.Counter)}
}

// bound sets the items kept per canvas and the counter of evictions.
func (p *Popularity) bound(maxItems int, evicted *metrics.Counter) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if maxItems <= 0 {
		maxItems = DefaultPopularityItems
	}
	p.maxItems, p.evicted = maxItems, evicted
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
		if r.add(item, p.maxItems) {
			p.evicted.Inc()
		}
	}
}

// add counts one engagement of id: it swaps places with the first item of
// its count's run, which then starts one later, and joins the end of the
// next count's run. A new id beyond maxItems first evicts the last item
// (one of the least engaged); add reports whether it did.
func (r *ranking) add(id string, maxItems int) (evicted bool) {
	i, ok := r.pos[id]
	if !ok && len(r.items) >= maxItems {
		r.evictLast()
		evicted = true
	}
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
	return evicted
}

// evictLast drops the last item, which has the lowest count.
func (r *ranking) evictLast() {
	last := len(r.items) - 1
	it := r.items[last]
	if n := int(it.Score); r.start[n] == last {
		delete(r.start, n)
	}
	delete(r.pos, it.ID)
	r.items[last] = Item{}
	r.items = r.items[:last]
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
