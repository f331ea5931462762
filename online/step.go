package online

import (
	"time"

	"github.com/unirec/unirec/online/model"
)

// Mini-batch learning (model.step > 1). A step is a run of consecutive
// examples cut by the log alone (prepare: at most model.step records of
// one Kafka transaction, so that every trainer reading the log cuts the
// same steps). It is learned in three phases:
//
//  1. in log order, by the learner: the lookups (paging, admission,
//     expiry, new rows) and the watermark, exactly as example by example,
//     while helpers and prepare do the step's log stage (its chunks are
//     awaited at the end); every row update the step will make is listed
//     under the row's shard;
//  2. in parallel, a chunk of examples per unit: score against the model
//     as it was before the step (progressive validation) and compute the
//     gradients;
//  3. in parallel, one row shard or one task per unit: every row takes one
//     AdaGrad step with the gradients of its updates summed in log order
//     (a row's updates, all computed against the same values, overshot
//     when applied one by one: bench/README.md, "Mini-batches"); a task's
//     adapter, bias and memory weights take their examples' steps in log
//     order.
//
// Each unit's result depends only on the step's examples and the model
// before it, never on which worker ran it or when, so the model is a pure
// function of the log and independent of the number of workers.

const (
	stepShards = 64 // row shards of phase 3, by slot
	scoreChunk = 16 // examples per unit of phase 2
)

// The row groups of an example, in the order the example updates them.
const (
	groupCtx   = iota // context rows: the context gradient / sqrt(n), bias dz
	groupItem         // item id row: the item gradient, bias dz
	groupMeta         // metadata rows: the item gradient / sqrt(m), no bias
	gradGroups        // and then the task adapter's scale and shift
)

// stepExample is one example of the step being learned.
type stepExample struct {
	p         *prepared
	task      *taskState // nil: not learned (undecodable)
	ctx, item []int32    // row slots, -1 for a feature without a row
	ok        bool       // has a finite gradient
	prob      float32    // the progressive-validation prediction
	dz        float32
	g         []float32 // (gradGroups+2) x dim: the groups', then scale's and shift's gradients
}

// rowUpdate is one row update of phase 3.
type rowUpdate struct {
	ex, slot int32
	group    uint8
}

// stepState is the step being learned.
type stepState struct {
	ex     []stepExample
	shards [stepShards][]rowUpdate
	tasks  []*taskState
	byTask [][]int32 // the examples of tasks[i], in order
	pos    []int32   // phase 3: per slot, 1 + its index in its shard's sums; 0 between steps
}

// stepScratch is a worker's buffers for phases 2 and 3.
type stepScratch struct {
	scoreBufs
	ctxRows, itemRows [][]float32
	rows              []int32   // phase 3: the rows of a shard, in first-update order
	sums, dz          []float32 // and their summed gradients
}

func newStepScratch(d int) *stepScratch { return &stepScratch{scoreBufs: newScoreBufs(d)} }

// reset empties st for a step of n examples.
func (st *stepState) reset(n, d int) {
	for len(st.ex) < n {
		st.ex = append(st.ex, stepExample{g: make([]float32, (gradGroups+2)*d)})
	}
	for i := range st.shards {
		st.shards[i] = st.shards[i][:0]
	}
	st.tasks = st.tasks[:0]
	for i := range st.byTask {
		st.byTask[i] = st.byTask[i][:0]
	}
}

// addTask lists example k under its task.
func (st *stepState) addTask(ts *taskState, k int) {
	i := 0
	for i < len(st.tasks) && st.tasks[i] != ts {
		i++
	}
	if i == len(st.tasks) {
		st.tasks = append(st.tasks, ts)
		if len(st.byTask) < len(st.tasks) {
			st.byTask = append(st.byTask, nil)
		}
	}
	st.byTask[i] = append(st.byTask[i], int32(k))
}

// list lists the updates of example k's rows of one group.
func (st *stepState) list(k int, slots []int32, group uint8) {
	for _, sl := range slots {
		if sl >= 0 {
			sh := &st.shards[sl%stepShards]
			*sh = append(*sh, rowUpdate{ex: int32(k), slot: sl, group: group})
		}
	}
}

// learnStep learns the step recs, records base.. of the batch; ms is the
// batch's log stage, nil when it runs inline (paging). With max_rows a
// commit makes room first for every row the step may use, so no row is
// evicted within a step.
func (t *Trainer) learnStep(ms *logStage, recs []prepared, base int) error {
	st := &t.step
	st.reset(len(recs), t.cfg.Dim)
	if t.opts.MaxRows > 0 {
		need := 0
		for i := range recs {
			need += len(recs[i].f.ctx) + len(recs[i].f.item)
		}
		if t.tab.len()+need > t.opts.MaxRows {
			if err := t.commitLocked(); err != nil {
				return err
			}
		}
	}
	// A row expired in phase 1 keeps its slot until the step is learned:
	// an earlier example of the step may still update it.
	t.tab.hold = true
	defer t.tab.release()
	start := time.Now()
	learned := int64(0)
	for k := range recs {
		if err := t.prepareStep(ms, recs, base, k); err != nil {
			return err
		}
		if st.ex[k].task != nil {
			learned++
		}
	}
	// The lookups do not read what the log stage computes (memory
	// features, registries), so the stage's chunks for the step are done
	// by helpers and prepare meanwhile; phase 2 needs them.
	if ms != nil {
		ms.await(base + len(recs) - 1)
	}
	if n := len(t.tab.ids); len(st.pos) < n {
		st.pos = append(st.pos, make([]int32, n-len(st.pos))...)
	}
	parallel := time.Now()
	t.counters.stepLogOrder.Add(parallel.Sub(start).Seconds())
	t.pool.run((len(recs)+scoreChunk-1)/scoreChunk, func(w, u int) {
		for k := u * scoreChunk; k < min(len(recs), (u+1)*scoreChunk); k++ {
			t.scoreStep(t.pool.scrat[w], &st.ex[k])
		}
	})
	t.pool.run(stepShards+len(st.tasks), func(w, u int) {
		if u < stepShards {
			t.updateShard(t.pool.scrat[w], st.shards[u])
		} else {
			t.updateTask(st.tasks[u-stepShards], st.byTask[u-stepShards])
		}
	})
	t.counters.stepParallel.Add(time.Since(parallel).Seconds())
	t.counters.steps.Inc()
	t.applied.Add(learned)
	return nil
}

// prepareStep is phase 1 for example k of the step.
func (t *Trainer) prepareStep(ms *logStage, recs []prepared, base, k int) error {
	st := &t.step
	e, p := &st.ex[k], &recs[k]
	e.p, e.task, e.ok = p, nil, false
	if p.err != nil {
		return nil
	}
	if ms == nil {
		wm := t.watermark
		t.mem.readMemory(&p.ex, &p.f, &wm)
		t.register(&p.ex)
	}
	now := p.ex.EventTime
	var prev []int32 // the context slots of the example before, in this step
	if k > 0 && st.ex[k-1].task != nil {
		prev = st.ex[k-1].ctx
	}
	var err error
	if e.ctx, e.item, err = t.lookupRows(&p.f, now, prev, e.ctx, e.item); err != nil {
		return err
	}
	e.task = t.task(p.ex.Task)
	t.dirtyTasks[p.ex.Task] = struct{}{}
	st.addTask(e.task, k)
	n := min(model.ItemIDRows, len(e.item))
	st.list(k, e.ctx, groupCtx)
	st.list(k, e.item[:n], groupItem)
	st.list(k, e.item[n:], groupMeta)
	if now > t.watermark {
		t.watermark = now
	}
	return nil
}

// scoreStep is phase 2 for one example: its prediction and gradients
// against the model as it was before the step, as learn and update
// compute them.
func (t *Trainer) scoreStep(sc *stepScratch, e *stepExample) {
	if e.task == nil {
		return
	}
	ex, f, ts := &e.p.ex, &e.p.f, e.task
	sc.ctxRows, sc.itemRows = t.rowsOf(sc.ctxRows[:0], e.ctx), t.rowsOf(sc.itemRows[:0], e.item)
	z := sc.score(ts, sc.ctxRows, sc.itemRows, f)
	e.prob = model.Sigmoid(z)
	if e.dz, e.ok = t.lossGradient(ex, z); !e.ok {
		return
	}
	d := t.cfg.Dim
	gCtx, gItem, gMeta := e.g[:d], e.g[d:2*d], e.g[2*d:3*d]
	sc.gradients(e.dz, ts, gItem, gCtx, e.g[3*d:4*d], e.g[4*d:5*d])
	if scale := contextScale(e.ctx); scale > 0 {
		scaleBy(gCtx, scale)
	}
	copy(gMeta, gItem)
	scaleBy(gMeta, model.MetaScale(sc.itemRows))
}

func scaleBy(g []float32, s float32) {
	for i := range g {
		g[i] *= s
	}
}

// updateShard is phase 3 for one row shard: each row takes one AdaGrad
// step with the gradients of its updates summed in log order. st.pos
// maps a slot to its sum; shards never share a slot.
func (t *Trainer) updateShard(sc *stepScratch, ups []rowUpdate) {
	d := t.cfg.Dim
	st := &t.step
	sc.rows = sc.rows[:0]
	for _, u := range ups {
		e := &st.ex[u.ex]
		if !e.ok {
			continue
		}
		p := st.pos[u.slot]
		if p == 0 {
			sc.rows = append(sc.rows, u.slot)
			p = int32(len(sc.rows))
			st.pos[u.slot] = p
			if len(sc.sums) < int(p)*d {
				sc.sums = append(sc.sums, make([]float32, d)...)
				sc.dz = append(sc.dz, 0)
			}
			clear(sc.sums[(p-1)*int32(d) : p*int32(d)])
			sc.dz[p-1] = 0
		}
		model.Add(e.g[int(u.group)*d:int(u.group+1)*d], sc.sums[(p-1)*int32(d):p*int32(d)])
		if u.group != groupMeta {
			sc.dz[p-1] += e.dz
		}
	}
	for i, slot := range sc.rows {
		g := sc.sums[i*d : (i+1)*d]
		t.rowStep(slot, g, model.Dot(g, g)/float32(d), sc.dz[i])
		st.pos[slot] = 0
	}
}

// updateTask is phase 3 for one task: progressive validation and the
// adapter's and memory weights' steps of its examples, in log order.
func (t *Trainer) updateTask(ts *taskState, examples []int32) {
	d := t.cfg.Dim
	for _, k := range examples {
		e := &t.step.ex[k]
		ex := &e.p.ex
		t.progress.Observe(ex.Task, e.prob, ex.Label, ex.Weight)
		if !e.ok {
			continue
		}
		t.stepAdapter(ts, e.g[3*d:4*d], e.g[4*d:5*d], e.dz)
		t.learnMemory(&e.p.f, ts, e.dz)
	}
}
