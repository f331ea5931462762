package online

import (
	"maps"
	"slices"
	"sort"

	"github.com/unirec/unirec/stream"
)

// Capture is a consistent copy of everything serving needs from the model
// at one point of the examples log: the weights (no optimizer state), the
// per-task adapters, the item registry and per-task popularity, with the
// offsets and watermark they correspond to.
type Capture struct {
	Config    ModelConfig
	Version   int64
	Offsets   map[int32]int64
	Watermark int64 // newest event time included, unix ms
	Applied   int64
	// IDs and Weights hold the rows: row i is Weights[i*(Dim+1):(i+1)*(Dim+1)].
	IDs      []uint64
	Weights  []float32
	Tasks    map[string]TaskParams
	Items    []Item
	Popular  map[string][]Popular
	Progress map[string]TaskProgress
}

// Item is one entry of the item registry.
type Item struct {
	ID   string
	Meta stream.ItemMeta
}

// Popular is an item and its popularity score in a task.
type Popular struct {
	Item  string
	Score float64
}

// PopularTopN is how many items per task a capture's popularity list holds.
const PopularTopN = 1000

// Capture commits the store, assigns the next snapshot version, and returns
// a copy of the committed model, so a snapshot never includes anything a
// restarted trainer could lose.
func (t *Trainer) Capture() (*Capture, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.version++
	if err := t.commitLocked(); err != nil {
		t.version--
		return nil, err
	}
	d := t.cfg.Dim + 1
	c := &Capture{
		Config: t.cfg, Version: t.version, Offsets: maps.Clone(t.offsets),
		Watermark: t.watermark, Applied: t.applied,
		IDs: make([]uint64, 0, len(t.rows)), Weights: make([]float32, 0, len(t.rows)*d),
		Tasks: map[string]TaskParams{}, Popular: map[string][]Popular{}, Progress: t.progress.All(),
	}
	ids := slices.Sorted(maps.Keys(t.rows))
	for _, id := range ids {
		c.IDs = append(c.IDs, id)
		c.Weights = append(c.Weights, t.rows[id].w...)
	}
	for name, ts := range t.tasks {
		c.Tasks[name] = TaskParams{Scale: slices.Clone(ts.p.Scale), Shift: slices.Clone(ts.p.Shift), Bias: ts.p.Bias}
	}
	for _, id := range slices.Sorted(maps.Keys(t.items)) {
		c.Items = append(c.Items, Item{ID: id, Meta: t.items[id]})
	}
	for task, m := range t.pop {
		c.Popular[task] = topPopular(m, PopularTopN)
	}
	return c, nil
}

func topPopular(m map[string]float64, n int) []Popular {
	out := make([]Popular, 0, len(m))
	for item, s := range m {
		out = append(out, Popular{Item: item, Score: s})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Item < out[j].Item
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
