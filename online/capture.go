package online

import (
	"maps"
	"slices"

	"github.com/unirec/unirec/online/model"
)

// Capture expires stale rows, commits the store, assigns the next snapshot
// version, and returns a copy of the committed model, so a snapshot never
// includes anything a restarted trainer could lose. With a memory bound the
// rows are read from Pebble, which holds all of them after the commit.
func (t *Trainer) Capture() (*model.Capture, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweepExpired()
	t.version++
	if err := t.syncLocked(); err != nil {
		t.version--
		return nil, err
	}
	c := &model.Capture{
		Config: t.cfg, Version: t.version, Offsets: maps.Clone(t.offsets),
		Watermark: t.watermark, Applied: t.applied.Load(),
		Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}, Progress: t.progress.All(),
	}
	if err := t.captureRows(c); err != nil {
		return nil, err
	}
	for name, ts := range t.tasks {
		c.Tasks[name] = model.TaskParams{Scale: slices.Clone(ts.p.Scale), Shift: slices.Clone(ts.p.Shift), Bias: ts.p.Bias,
			Memory: memoryWeights(ts.p.Memory)}
	}
	for _, id := range slices.Sorted(maps.Keys(t.items)) {
		c.Items = append(c.Items, model.Item{ID: id, Meta: t.items[id]})
	}
	c.Memory = t.mem.capture()
	for task, p := range t.pop {
		c.Popular[task] = p.top(model.PopularTopN)
	}
	return c, nil
}

// captureRows copies the weights of every live row into c, in id order:
// in memory, the previous capture's rows with those committed since merged
// in (export.go); with a memory bound, every row read from Pebble.
func (t *Trainer) captureRows(c *model.Capture) error {
	d := t.cfg.Dim + 1
	if !t.paging {
		if t.export.valid {
			c.IDs, c.Weights = t.export.update(t.rows)
			return nil
		}
		n := t.rows.len()
		ids := make([]uint64, 0, n)
		t.rows.each(func(_ int32, id uint64) { ids = append(ids, id) })
		slices.Sort(ids)
		c.IDs, c.Weights = ids, make([]float32, 0, n*d)
		for _, id := range ids {
			slot, _ := t.rows.find(id)
			c.Weights = append(c.Weights, t.rows.w(slot)...)
		}
		t.export.set(c.IDs, c.Weights)
		return nil
	}
	var stale []uint64
	err := t.store.scanRows(t.rows.stride, func(id uint64, last int64, vals []float32) {
		if expired(t.rows.ttl, last, t.watermark) {
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
		t.expire(&t.rows.lanes[laneOf(id)], id)
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

// memoryWeights copies a task's memory weights; nil when it has none, as a
// snapshot decodes them.
func memoryWeights(w map[string]float32) map[string]float32 {
	if len(w) == 0 {
		return nil
	}
	return maps.Clone(w)
}
