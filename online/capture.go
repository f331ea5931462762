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

// Capture expires stale rows, commits the store, assigns the next snapshot
// version, and returns a copy of the committed model, so a snapshot never
// includes anything a restarted trainer could lose. With a memory bound the
// rows are read from Pebble, which holds all of them after the commit.
func (t *Trainer) Capture() (*Capture, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepExpired()
	t.version++
	if err := t.commitLocked(); err != nil {
		t.version--
		return nil, err
	}
	d := t.cfg.Dim + 1
	c := &Capture{
		Config: t.cfg, Version: t.version, Offsets: maps.Clone(t.offsets),
		Watermark: t.watermark, Applied: t.applied,
		IDs: make([]uint64, 0, t.tab.len()), Weights: make([]float32, 0, t.tab.len()*d),
		Tasks: map[string]TaskParams{}, Popular: map[string][]Popular{}, Progress: t.progress.All(),
	}
	if err := t.captureRows(c); err != nil {
		return nil, err
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

// captureRows copies the weights of every live row into c, in id order.
func (t *Trainer) captureRows(c *Capture) error {
	d := t.cfg.Dim + 1
	if !t.paging {
		for _, id := range slices.Sorted(maps.Keys(t.tab.index)) {
			c.IDs = append(c.IDs, id)
			c.Weights = append(c.Weights, t.tab.w(t.tab.index[id])...)
		}
		return nil
	}
	var stale []uint64
	err := t.store.scanRows(t.tab.stride, func(id uint64, last int64, vals []float32) {
		if expired(t.adm.ttl, last, t.watermark) {
			stale = append(stale, id)
			return
		}
		c.IDs = append(c.IDs, id)
		c.Weights = append(c.Weights, vals[:d]...)
	})
	if err != nil || len(stale) == 0 {
		return err
	}
	for _, id := range stale {
		t.expire(id)
	}
	return t.commitLocked()
}

// RaiseVersion makes the next snapshot version greater than v: a trainer
// taking over publication continues above every version published before.
func (t *Trainer) RaiseVersion(v int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.version = max(t.version, v)
}
