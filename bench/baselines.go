package bench

import (
	"math"
	"sort"
	"strings"

	"github.com/unirec/unirec/ingest"
)

// A Baseline answers evaluation queries from the training events alone, the
// way a team would ship it instead of unirec. Baselines are built once from
// exactly the events the evaluated systems were trained on and stay frozen
// at the cut.
type Baseline interface {
	Name() string
	// Answer returns at most q.K items for the query, best first, none of
	// them excluded, and a score for every candidate (higher is better) for
	// the sampled AUC.
	Answer(q BaselineQuery) (top []string, scores []float64)
}

// BaselineQuery is one evaluated query as a baseline sees it.
type BaselineQuery struct {
	// Event is the future engagement: its canvas and context are the
	// request; its item is what must be found (a baseline never reads it).
	Event ingest.Event
	K     int
	// Exclude holds the user's training history and the source item.
	Exclude map[string]bool
	// Candidates are scored for the sampled AUC (the engaged item and the
	// negatives).
	Candidates []string
}

// BaselineNames lists the baselines NewBaselines builds, in report order.
var BaselineNames = []string{"popularity", "context-popularity", "item-knn", "als"}

// NewBaselines builds every baseline from the training events.
func NewBaselines(train []ingest.Event, als ALSOptions) []Baseline {
	t := newTrainIndex(train)
	return []Baseline{
		newCanvasPopularity(t, train),
		newContextPopularity(t, train),
		newItemKNN(t, train, 50),
		newALSBaseline(t, train, als),
	}
}

// trainIndex is what every baseline shares: the items with a positive
// training engagement, their ids sorted (so index order breaks ties by id),
// global popularity across canvases, and each user's positive history.
type trainIndex struct {
	ids      []string
	idx      map[string]int32
	pop      []float64 // positive engagements per item, every canvas
	maxPop   float64
	popOrder []int32 // most popular first, ties by id
	// recent is each user's distinct positively engaged items, oldest
	// first (an item engaged again moves to the end).
	recent map[string][]int32
}

func newTrainIndex(train []ingest.Event) *trainIndex {
	t := &trainIndex{idx: map[string]int32{}, recent: map[string][]int32{}}
	for _, e := range train {
		if Positive(e.Action) && t.idx[e.ItemID] == 0 {
			t.idx[e.ItemID] = 1
		}
	}
	for id := range t.idx {
		t.ids = append(t.ids, id)
	}
	sort.Strings(t.ids)
	for i, id := range t.ids {
		t.idx[id] = int32(i)
	}
	t.pop = make([]float64, len(t.ids))
	for _, e := range train {
		if !Positive(e.Action) {
			continue
		}
		i := t.idx[e.ItemID]
		t.pop[i]++
		t.maxPop = max(t.maxPop, t.pop[i])
		if u := e.Context["user_id"]; u != "" {
			t.recent[u] = moveToEnd(t.recent[u], i)
		}
	}
	t.popOrder = make([]int32, len(t.ids))
	for i := range t.popOrder {
		t.popOrder[i] = int32(i)
	}
	sort.SliceStable(t.popOrder, func(a, b int) bool { return t.pop[t.popOrder[a]] > t.pop[t.popOrder[b]] })
	return t
}

func moveToEnd(h []int32, i int32) []int32 {
	for j, x := range h {
		if x == i {
			h = append(h[:j], h[j+1:]...)
			break
		}
	}
	return append(h, i)
}

// lastN is the user's n most recent items.
func (t *trainIndex) lastN(user string, n int) []int32 {
	h := t.recent[user]
	return h[max(0, len(h)-n):]
}

// answer ranks the items that have a primary score (NaN: none) first,
// higher first, ties by id, then fills up to K with global popularity
// (when backfill); candidates score the same way: primary-scored items
// above the rest, the rest by popularity.
func (t *trainIndex) answer(q BaselineQuery, primary []float64, backfill bool) ([]string, []float64) {
	type scored struct {
		i int32
		s float64
	}
	var best []scored // the K best primary-scored items, best first
	for i, s := range primary {
		if math.IsNaN(s) || q.Exclude[t.ids[i]] {
			continue
		}
		if len(best) == q.K && s <= best[len(best)-1].s {
			continue
		}
		j := sort.Search(len(best), func(j int) bool { return best[j].s < s })
		if len(best) < q.K {
			best = append(best, scored{})
		}
		copy(best[j+1:], best[j:])
		best[j] = scored{int32(i), s}
	}
	top := make([]string, 0, q.K)
	taken := map[int32]bool{}
	for _, b := range best {
		top = append(top, t.ids[b.i])
		taken[b.i] = true
	}
	for _, i := range t.popOrder {
		if !backfill || len(top) >= q.K {
			break
		}
		if !taken[i] && !q.Exclude[t.ids[i]] && (primary == nil || math.IsNaN(primary[i])) {
			top = append(top, t.ids[i])
		}
	}
	scores := make([]float64, len(q.Candidates))
	for c, id := range q.Candidates {
		i, ok := t.idx[id]
		switch {
		case !ok:
			scores[c] = -1
		case primary != nil && !math.IsNaN(primary[i]):
			scores[c] = 1e6 + primary[i]
		case backfill:
			scores[c] = t.pop[i] / (t.maxPop + 1)
		}
	}
	return top, scores
}

// noScores is a primary score vector with no item scored.
func (t *trainIndex) noScores() []float64 {
	p := make([]float64, len(t.ids))
	for i := range p {
		p[i] = math.NaN()
	}
	return p
}

// canvasPopularity is the global popularity of each canvas: items ranked by
// their positive engagements in the query's canvas, without backfill.
type canvasPopularity struct {
	t      *trainIndex
	counts map[string][]float64 // canvas -> item -> positives
}

func newCanvasPopularity(t *trainIndex, train []ingest.Event) *canvasPopularity {
	p := &canvasPopularity{t: t, counts: map[string][]float64{}}
	for _, e := range train {
		if !Positive(e.Action) {
			continue
		}
		c := p.counts[e.Canvas]
		if c == nil {
			c = t.noScores()
			p.counts[e.Canvas] = c
		}
		i := t.idx[e.ItemID]
		if math.IsNaN(c[i]) {
			c[i] = 0
		}
		c[i]++
	}
	return p
}

func (p *canvasPopularity) Name() string { return "popularity" }

func (p *canvasPopularity) Answer(q BaselineQuery) ([]string, []float64) {
	c := p.counts[q.Event.Canvas]
	if c == nil {
		c = p.t.noScores()
	}
	top, scores := p.t.answer(q, c, false)
	for i := range scores {
		scores[i] = max(0, scores[i]-1e6) // the count itself, 0 when none
	}
	return top, scores
}

// contextPopularity counts positive engagements per canvas and context
// value: the canvas' context fields other than user_id (and time), each
// normalized (trimmed, lower-case), joined in field-name order. A canvas
// whose only context is the user gets plain per-canvas popularity. Global
// popularity across canvases fills the answer up to K.
type contextPopularity struct {
	t      *trainIndex
	counts map[string]map[int32]float64
}

// ContextKey is the context value of an event for context popularity: its
// canvas and its non-user context fields, normalized and joined.
func ContextKey(e ingest.Event) string {
	keys := make([]string, 0, len(e.Context))
	for k := range e.Context {
		if k != "user_id" && k != "time" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(e.Canvas)
	for _, k := range keys {
		b.WriteString("\x00" + k + "=" + strings.ToLower(strings.TrimSpace(e.Context[k])))
	}
	return b.String()
}

func newContextPopularity(t *trainIndex, train []ingest.Event) *contextPopularity {
	p := &contextPopularity{t: t, counts: map[string]map[int32]float64{}}
	for _, e := range train {
		if !Positive(e.Action) {
			continue
		}
		key := ContextKey(e)
		if p.counts[key] == nil {
			p.counts[key] = map[int32]float64{}
		}
		p.counts[key][t.idx[e.ItemID]]++
	}
	return p
}

func (p *contextPopularity) Name() string { return "context-popularity" }

func (p *contextPopularity) Answer(q BaselineQuery) ([]string, []float64) {
	primary := p.t.noScores()
	for i, n := range p.counts[ContextKey(q.Event)] {
		primary[i] = n
	}
	return p.t.answer(q, primary, true)
}
