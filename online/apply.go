package online

import (
	"math"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Learning from one example: featurize, find (or page in, admit, create)
// the rows, score for progressive validation, update, and track items,
// popularity and the watermark.

// Apply learns from one example (progressive validation first). It fails
// only when the parameter store does; the trainer then commits nothing
// more (see Close).
func (t *Trainer) Apply(ex *stream.Example) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.apply(ex); err != nil {
		t.broken = err
		return err
	}
	return nil
}

func (t *Trainer) apply(ex *stream.Example) error {
	t.scratch.f.featurize(t.feat, t.cfg.Memory, ex)
	return t.learnInline(ex, &t.scratch.f)
}

// learnInline applies an example whose features are f, doing the log
// stage's work on it itself (logstage.go). With max_rows, rows are first
// paged out by a commit when the example's could pass it: the commit must
// not hold the example's own counts and registrations, so they come after.
func (t *Trainer) learnInline(ex *stream.Example, f *features) error {
	if t.opts.MaxRows > 0 && t.rows.len()+len(f.ctx)+len(f.item) > t.opts.MaxRows {
		if err := t.commitLocked(); err != nil {
			return err
		}
	}
	t.logInline(ex, f)
	return t.learn(ex, f)
}

// learn applies an example whose features are f, memory features read.
func (t *Trainer) learn(ex *stream.Example, f *features) error {
	s := &t.scratch
	var err error
	if s.ctxSlots, s.itemSlots, err = t.lookupRows(f, ex.EventTime, s.ctxSlots, s.ctxSlots, s.itemSlots); err != nil {
		return err
	}
	s.ctxRows, s.itemRows = t.rowsOf(s.ctxRows[:0], s.ctxSlots), t.rowsOf(s.itemRows[:0], s.itemSlots)
	ts := t.task(ex.Task)
	t.dirtyTasks[ex.Task] = struct{}{}
	z := s.score(ts, s.ctxRows, s.itemRows, f)
	t.progress.Observe(ex.Task, model.Sigmoid(z), ex.Label, ex.Weight)
	if dz, ok := t.lossGradient(ex, z); ok {
		t.update(ts, dz)
		t.learnMemory(f, ts, dz)
	}
	t.track(ex)
	return nil
}

// lookupRows returns the context and item slots of f at now, in ctx and
// item. The context's are those of prev, the context slots of the example
// before (nil: none), when f shares its context and they still hold its
// rows (reuse).
func (t *Trainer) lookupRows(f *features, now int64, prev, ctx, item []int32) ([]int32, []int32, error) {
	var err error
	if f.shared && prev != nil && t.reuse(prev, f.ctx) {
		ctx = append(ctx[:0], prev...)
		for _, sl := range ctx {
			t.rows.touch(sl, now)
		}
	} else if ctx, err = t.lookup(ctx[:0], f.ctx, now); err != nil {
		return ctx, item, err
	}
	item, err = t.lookup(item[:0], f.item, now)
	return ctx, item, err
}

// scoreBufs hold the vectors of an example's score: the context vector c,
// cp adapted to its task, and the item vector v (weights and bias).
type scoreBufs struct{ c, cp, v []float32 }

func newScoreBufs(d int) scoreBufs {
	return scoreBufs{c: make([]float32, d), cp: make([]float32, d), v: make([]float32, d+1)}
}

// score returns the logit of an example of task ts with these rows and
// memory features, filling the vectors.
func (b *scoreBufs) score(ts *taskState, ctxRows, itemRows [][]float32, f *features) float32 {
	ctxBias := model.ContextVector(b.cp, b.c, ts.p, ctxRows)
	model.ItemVector(b.v, itemRows)
	return model.Logit(b.cp, ctxBias, b.v) + memoryTerm(f, ts)
}

// gradients writes, for dLoss/dLogit dz, the gradients of the item vector
// (gv), of the context vector (gc) and of the adapter's scale and shift.
func (b *scoreBufs) gradients(dz float32, ts *taskState, gv, gc, gScale, gShift []float32) {
	for i := range gv {
		gcp := dz * b.v[i]
		gv[i] = dz * b.cp[i]
		gc[i] = gcp * ts.p.Scale[i]
		gScale[i] = gcp * b.c[i]
		gShift[i] = gcp
	}
}

// lossGradient is dLoss/dLogit of ex at logit z (log-Q corrected, clipped);
// false for a non-finite one, which is not learned.
func (t *Trainer) lossGradient(ex *stream.Example, z float32) (float32, bool) {
	return t.cfg.Gradient(model.Sigmoid(t.cfg.TrainingLogit(z, ex.SampleProb)), ex.Label, ex.Weight)
}

// rowsOf returns the weight rows of slots (nil for features without one).
func (t *Trainer) rowsOf(dst [][]float32, slots []int32) [][]float32 {
	for _, sl := range slots {
		if sl < 0 {
			dst = append(dst, nil)
		} else {
			dst = append(dst, t.rows.w(sl))
		}
	}
	return dst
}

// lookup appends the slot of every id at now, the watermark's (-1 for a
// feature that has no row yet).
func (t *Trainer) lookup(dst []int32, ids []uint64, now int64) ([]int32, error) {
	for _, id := range ids {
		slot, err := t.lookupID(id, now, t.watermark)
		if err != nil {
			return dst, err
		}
		dst = append(dst, slot)
	}
	return dst, nil
}

// lookupID returns the slot of id, marking it used at now: a row in
// memory, else paged in from Pebble, else created once admitted; -1 for a
// feature that has no row yet. A row unused for the TTL at watermark wm is
// expired first. It touches id's lane only, so lanes may be looked up in
// parallel (step.go).
func (t *Trainer) lookupID(id uint64, now, wm int64) (int32, error) {
	l := laneOf(id)
	ln := &t.rows.lanes[l]
	slot, ok := ln.tab.index[id]
	if ok && expired(t.rows.ttl, ln.tab.last[slot], wm) {
		ln.tab.remove(slot)
		t.expire(ln, id)
		ok = false
	}
	if !ok && t.paging {
		var err error
		if slot, ok, err = t.pageIn(ln, id, wm); err != nil {
			return -1, err
		}
	}
	if !ok {
		if !ln.adm.admit(id, now, wm) {
			return -1, nil
		}
		if ln.adm.minCount > 1 {
			t.counters.admitted.Inc()
		}
		slot = ln.tab.insert(id, nil, now)
		initRow(ln.tab.w(slot)[:t.cfg.Dim], id, float32(t.cfg.InitScale))
	}
	ln.tab.touch(slot, now)
	return globalSlot(l, slot), nil
}

// reuse says whether slots, the context slots of the example learned just
// before, hold exactly the rows lookup would find for ids (the same
// context): every id has a live, unexpired row in its slot. A feature
// without a row is looked up again (its sightings count), and so is every
// row when paging, whose commits may evict rows between examples.
func (t *Trainer) reuse(slots []int32, ids []uint64) bool {
	if t.paging || len(slots) != len(ids) {
		return false
	}
	for k, sl := range slots {
		if sl < 0 || !t.rows.holds(sl, ids[k], t.watermark) {
			return false
		}
	}
	return true
}

// pageIn loads the row of id from Pebble into its lane ln, unless it is
// expired at watermark wm; it returns the slot in the lane.
func (t *Trainer) pageIn(ln *lane, id uint64, wm int64) (int32, bool, error) {
	if _, deleted := ln.deleted[id]; deleted {
		return 0, false, nil
	}
	last, found, err := t.store.getRow(id, ln.vals)
	if err != nil || !found {
		return 0, false, err
	}
	if expired(t.rows.ttl, last, wm) {
		t.expire(ln, id)
		return 0, false, nil
	}
	t.counters.pagedIn.Inc()
	return ln.tab.insert(id, ln.vals, last), true, nil
}

// expire records that the row of id is gone; the next commit deletes it.
func (t *Trainer) expire(ln *lane, id uint64) {
	ln.deleted[id] = struct{}{}
	t.counters.expired.Inc()
}

// sweepExpired expires every row and sightings counter in memory unused
// for the TTL; lookup would treat them as absent anyway, so this frees
// memory without changing what the model learns.
func (t *Trainer) sweepExpired() {
	if t.rows.ttl <= 0 {
		return
	}
	t.rows.sweep(t.watermark, t.expire)
	t.mem.sweep(t.watermark)
}

func (t *Trainer) popularity(task string) *popTable {
	p := t.pop[task]
	if p == nil {
		p = newPopTable()
		t.pop[task] = p
	}
	return p
}

func (t *Trainer) task(name string) *taskState {
	ts := t.tasks[name]
	if ts == nil {
		d := t.cfg.Dim
		ts = &taskState{p: model.NewTaskParams(d), accScale: make([]float32, d), accShift: make([]float32, d),
			accMemory: map[string]float32{}}
		t.tasks[name] = ts
	}
	return ts
}

// initRow fills w with uniform values in [-scale, scale) drawn from a
// splitmix64 stream seeded by the feature id: the model is a pure function
// of the examples it saw, in order.
func initRow(w []float32, id uint64, scale float32) {
	x := id
	for i := range w {
		x += 0x9e3779b97f4a7c15
		w[i] = (float32(model.Mix64(x)>>40)/float32(1<<24)*2 - 1) * scale
	}
}

// track counts ex applied and raises the watermark past it.
func (t *Trainer) track(ex *stream.Example) {
	t.applied.Add(1)
	if ex.EventTime > t.watermark {
		t.watermark = ex.EventTime
	}
}

// register updates the item registry and popularity with ex: like the
// memory, a function of the log alone, so it runs beside the learner.
func (t *Trainer) register(ex *stream.Example) {
	t.registerItem(ex)
	t.countPopularity(ex)
}

// registerItem records ex's item and its metadata (the log stage's item
// lane: it touches items and dirtyItems only).
func (t *Trainer) registerItem(ex *stream.Example) {
	if old, ok := t.items[ex.ItemID]; !ok || (ex.Item.Type != "" && !sameMeta(old, ex.Item)) {
		t.items[ex.ItemID] = cloneMeta(ex.Item)
		t.dirtyItems[ex.ItemID] = struct{}{}
	}
}

// countPopularity adds a positive ex to its item's popularity in its task
// (the log stage's popularity lane: it touches pop only).
func (t *Trainer) countPopularity(ex *stream.Example) {
	// A non-finite weight or label would make the item's popularity NaN
	// or infinite for good: skipped, as its update is.
	if ex.Label > 0 && !math.IsInf(float64(ex.Label), 0) && !math.IsNaN(float64(ex.Weight)) && !math.IsInf(float64(ex.Weight), 0) {
		t.popularity(ex.Task).add(ex.ItemID, float64(ex.Weight))
	}
}

func cloneMeta(m stream.ItemMeta) stream.ItemMeta {
	m.Categories = append([]string(nil), m.Categories...)
	return m
}

func sameMeta(a, b stream.ItemMeta) bool {
	if a.Type != b.Type || a.Title != b.Title || len(a.Categories) != len(b.Categories) {
		return false
	}
	for i := range a.Categories {
		if a.Categories[i] != b.Categories[i] {
			return false
		}
	}
	return true
}
