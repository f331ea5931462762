package load

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// Model is a synthetic model of a world's catalog: random rows for every
// item feature and for the context features of the world's queries, and a
// full memory list (model.memory.items_per_context random items) for every
// memory key of those queries, as a trained model would have them (the
// benchmark measures speed, not quality).
type Model struct {
	Capture *model.Capture
	rng     *rand.Rand
}

// NewModel builds version 1 of a synthetic model with rows of dim weights
// for w's items and for the contexts of queries requests per canvas.
func NewModel(w *synth.World, reg *ingest.Registry, dim, queries int, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 7))
	var f model.Featurizer
	ids := map[uint64]bool{}
	var buf []uint64
	for _, it := range w.Items() {
		for _, id := range f.Item(buf[:0], "", it.ID, it.Meta) {
			ids[id] = true
		}
	}
	c := &model.Capture{Config: model.DefaultModelConfig(), Version: 1, Watermark: time.Now().UnixMilli(),
		Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}}
	c.Config.Dim = dim
	items := w.Items()
	lists := map[uint64]bool{}
	var keys []model.MemoryKey
	for _, canvas := range w.Canvases() {
		tp := model.NewTaskParams(dim)
		c.Tasks[canvas] = *tp
		for i := range queries {
			ctx := w.QueryContext(canvas, i)
			ex := reg.Normalize(&ingest.Event{Canvas: canvas, Context: ctx})
			for _, id := range f.Context(buf[:0], canvas, ex.Context, time.Now()) {
				ids[id] = true
			}
			keys = c.Config.Memory.MemoryKeys(keys[:0], canvas, ex.Context)
			for _, k := range keys {
				tp.Memory[k.Field] = float32(0.1 + 0.4*rng.Float64())
				if !lists[k.ID] {
					lists[k.ID] = true
					c.Memory = append(c.Memory, randomList(rng, k.ID, items, c.Config.Memory.ItemsPerContext, c.Watermark))
				}
			}
		}
	}
	slices.SortFunc(c.Memory, func(a, b model.MemoryList) int { return cmp.Compare(a.Key, b.Key) })
	for id := range ids {
		c.IDs = append(c.IDs, id)
	}
	slices.Sort(c.IDs)
	c.Weights = make([]float32, len(c.IDs)*(dim+1))
	for i := range c.Weights {
		c.Weights[i] = float32(rng.NormFloat64() * 0.1)
	}
	for _, it := range w.Items() {
		c.Items = append(c.Items, model.Item{ID: it.ID, Meta: it.Meta})
	}
	return &Model{Capture: c, rng: rng}
}

// randomList is a full memory list of n random items of the catalog with
// counts from 1 to 50, sorted by item id as snapshots carry it.
func randomList(rng *rand.Rand, key uint64, items []synth.Item, n int, ref int64) model.MemoryList {
	l := model.MemoryList{Key: key, Ref: ref}
	seen := map[string]bool{}
	for len(l.Items) < min(n, len(items)) {
		it := items[rng.IntN(len(items))]
		if !seen[it.ID] {
			seen[it.ID] = true
			l.Items = append(l.Items, model.MemoryItem{Item: it.ID, Count: float64(1 + rng.IntN(50))})
		}
	}
	slices.SortFunc(l.Items, func(a, b model.MemoryItem) int { return cmp.Compare(a.Item, b.Item) })
	return l
}

// Full returns the model as a full snapshot update.
func (m *Model) Full() *snapshot.Update { return snapshot.UpdateOf(nil, m.Capture) }

// Delta returns the next version as a delta update that changes a
// fraction of the rows (as a trainer's touched rows), and makes it the
// model's current version.
func (m *Model) Delta(fraction float64) *snapshot.Update {
	c := m.Capture
	dim := c.Config.Dim
	d := &snapshot.Delta{Dim: dim, Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}}
	n := max(1, int(fraction*float64(len(c.IDs))))
	start := m.rng.IntN(len(c.IDs))
	for j := range n {
		i := (start + j*7919) % len(c.IDs)
		d.IDs = append(d.IDs, c.IDs[i])
	}
	slices.Sort(d.IDs)
	d.IDs = slices.Compact(d.IDs)
	for range d.IDs {
		for range dim + 1 {
			d.Weights = append(d.Weights, float32(m.rng.NormFloat64()*0.1))
		}
	}
	c.Version++
	c.Watermark = time.Now().UnixMilli()
	man := &snapshot.Manifest{Version: c.Version, Kind: snapshot.KindDelta, BaseVersion: c.Version - 1, FullOffset: -1,
		Encoding: snapshot.EncodingFloat32, Config: c.Config, Watermark: time.UnixMilli(c.Watermark).UTC(),
		Rows: len(d.IDs), TotalRows: len(c.IDs)}
	return &snapshot.Update{Manifest: man, Delta: d}
}
