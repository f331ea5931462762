package online

import (
	"slices"
	"time"

	"github.com/unirec/unirec/online/model"
)

// Mini-batch learning (model.step > 1). A step is a run of consecutive
// examples cut by the log alone (prepare: at most model.step records of
// one Kafka transaction, so that every trainer reading the log cuts the
// same steps). It is learned in three phases:
//
//  1. in log order: the watermark and tasks, by the learner; then, in
//     parallel, each chunk of examples lists its feature ids by row lane,
//     and the lookups (paging, admission, expiry, new rows) run exactly as
//     example by example, one row lane per unit (a lane takes the step's
//     ids of its own in log order: rows.go), beside the log stage's lanes;
//     every row update the step will make is listed under the row's shard;
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
	refChunk   = 32 // examples per unit listing features by lane (phase 1)
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
	ctx, item []int32    // row slots, -1 for a feature without a row (in phase 1: where the lanes write them, resolve)
	now, wm   int64      // its event time, and the watermark before it
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

// laneRef is a feature of the step's example ex, looked up by its lane:
// ctx[j] of ex, or item[j] when item is set; pos = j<<1 | item. The lane
// writes its slot here, in memory of its own: the example's ctx and item
// hold where their refs are (index<<laneBits | lane in the lists of the
// example's chunk) until phase 2 reads the slots back (resolve), so lanes
// on different cores never write to the same cache line.
type laneRef struct {
	id   uint64
	ex   int32
	pos  uint32
	slot int32
}

// The side of a laneRef's feature.
const (
	refCtx  uint32 = 0
	refItem uint32 = 1
)

func (r laneRef) item() bool { return r.pos&1 == refItem }
func (r laneRef) j() int     { return int(r.pos >> 1) }

// stepState is the step being learned.
type stepState struct {
	ex     []stepExample // the first n are the step's
	n      int
	chunks []refLists      // phase 1: the features of each refChunk examples, by lane
	errs   [rowLanes]error // and the error of each lane's lookups
	shards [stepShards]shard
	tasks  []*taskState
	byTask [][]int32 // the examples of tasks[i], in order
	pos    []int32   // phase 3: per slot, 1 + its index in its shard's sums; 0 between steps
}

// refLists is the features of a chunk of the step's examples, by lane, in
// log order.
type refLists struct {
	lanes [rowLanes][]laneRef
	_     [64]byte
}

// shard is the updates of a row shard, on a cache line of its own: lanes
// on different cores append to their shards.
type shard struct {
	ups []rowUpdate
	_   [40]byte
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
	st.n = n
	for len(st.ex) < n {
		st.ex = append(st.ex, stepExample{g: make([]float32, (gradGroups+2)*d)})
	}
	for i := range st.shards {
		st.shards[i].ups = st.shards[i].ups[:0]
	}
	for len(st.chunks) < (n+refChunk-1)/refChunk {
		st.chunks = append(st.chunks, refLists{})
	}
	for c := range st.chunks {
		for l := range st.chunks[c].lanes {
			st.chunks[c].lanes[l] = st.chunks[c].lanes[l][:0]
		}
	}
	clear(st.errs[:])
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

// listChunk lists the features of chunk c of the step's examples under
// their lanes (a unit of phase 1: chunks touch lists of their own).
func (st *stepState) listChunk(c int) {
	for k := c * refChunk; k < min(st.n, (c+1)*refChunk); k++ {
		if e := &st.ex[k]; e.task != nil {
			e.ctx = st.refs(e.ctx[:0], c, k, e.p.f.ctx, refCtx)
			e.item = st.refs(e.item[:0], c, k, e.p.f.item, refItem)
		}
	}
}

// refs lists every feature id of example k (of chunk c) under its lane,
// and appends to dst where: the lane's lookup writes the slot there.
func (st *stepState) refs(dst []int32, c, k int, ids []uint64, side uint32) []int32 {
	lanes := &st.chunks[c].lanes
	for _, id := range ids {
		l := laneOf(id)
		dst = append(dst, int32(len(lanes[l]))<<laneBits|int32(l))
		lanes[l] = append(lanes[l], laneRef{id: id, ex: int32(k), pos: uint32(len(dst)-1)<<1 | side})
	}
	return dst
}

// ref is the laneRef of example k at v, as refs encoded it.
func (st *stepState) ref(k int, v int32) *laneRef {
	return &st.chunks[k/refChunk].lanes[v&(rowLanes-1)][v>>laneBits]
}

// resolve replaces the refs of example k's features by their slots.
func (st *stepState) resolve(k int) {
	e := &st.ex[k]
	for j, v := range e.ctx {
		e.ctx[j] = st.ref(k, v).slot
	}
	for j, v := range e.item {
		e.item[j] = st.ref(k, v).slot
	}
}

// learnStep learns the step recs, records base.. of the batch; ms is the
// batch's log stage, nil with max_rows (paging). With max_rows a commit
// makes room first for every row the step may use, so no row is evicted
// within a step; the log stage's work is then done inline by the learner
// or, with more than two workers, in a stage of the step's own opened
// after that commit (a commit must not hold counts of records it does not
// claim). The two give the same model: only the cost differs (on two
// cores the step's stage measured 0.92x the inline rate, for a log-order
// share of 13% instead of 22%: bench/README.md).
func (t *Trainer) learnStep(ms *logStage, recs []prepared, base int) error {
	st := &t.step
	st.reset(len(recs), t.cfg.Dim)
	if t.opts.MaxRows > 0 {
		need := 0
		for i := range recs {
			need += len(recs[i].f.ctx) + len(recs[i].f.item)
		}
		if t.rows.len()+need > t.opts.MaxRows {
			if err := t.commitLocked(); err != nil {
				return err
			}
		}
	}
	if ms == nil && t.pool.n > 2 {
		ms, base = t.startLogStage(recs), 0
		defer ms.finish()
	}
	// A row expired in phase 1 keeps its slot until the step is learned:
	// an earlier example of the step may still update it.
	t.rows.hold()
	defer t.rows.release()
	start := time.Now()
	learned := int64(0)
	for k := range recs {
		t.prepareStep(ms, recs, k)
		if st.ex[k].task != nil {
			learned++
		}
	}
	listing := time.Now()
	t.pool.run((len(recs)+refChunk-1)/refChunk, func(_, c int) { st.listChunk(c) })
	lanes := time.Now()
	chain, err := t.lookupStep(ms, base+len(recs)-1)
	if err != nil {
		return err
	}
	if n := t.rows.slots(); len(st.pos) < n {
		st.pos = append(st.pos, make([]int32, n-len(st.pos))...)
	}
	parallel := time.Now()
	t.counters.stepLogOrder.Add(listing.Sub(start).Seconds() + chain.Seconds())
	t.pool.run((len(recs)+scoreChunk-1)/scoreChunk, func(w, u int) {
		for k := u * scoreChunk; k < min(len(recs), (u+1)*scoreChunk); k++ {
			t.scoreStep(t.pool.scrat[w], k)
		}
	})
	t.pool.run(stepShards+len(st.tasks), func(w, u int) {
		if u < stepShards {
			t.updateShard(t.pool.scrat[w], st.shards[u].ups)
		} else {
			t.updateTask(st.tasks[u-stepShards], st.byTask[u-stepShards])
		}
	})
	t.counters.stepParallel.Add(lanes.Sub(listing).Seconds() + max(0, parallel.Sub(lanes)-chain).Seconds() + time.Since(parallel).Seconds())
	t.counters.steps.Inc()
	t.applied.Add(learned)
	return nil
}

// prepareStep is the part of phase 1 in log order for example k of the
// step: its task, the watermark before it, and the log stage's work when
// it runs inline (ms nil). Its features are then listed by lane
// (listChunk) and looked up (lookupStep), in parallel.
func (t *Trainer) prepareStep(ms *logStage, recs []prepared, k int) {
	st := &t.step
	e, p := &st.ex[k], &recs[k]
	e.p, e.task, e.ok = p, nil, false
	if p.err != nil {
		return
	}
	if ms == nil {
		t.logInline(&p.ex, &p.f)
	}
	e.now, e.wm = p.ex.EventTime, t.watermark
	// The examples of a request share a task: it is looked up once.
	if k > 0 && st.ex[k-1].task != nil && recs[k-1].ex.Task == p.ex.Task {
		e.task = st.ex[k-1].task
	} else {
		e.task = t.task(p.ex.Task)
		t.dirtyTasks[p.ex.Task] = struct{}{}
	}
	st.addTask(e.task, k)
	if e.now > t.watermark {
		t.watermark = e.now
	}
}

// A row shard of phase 3 holds rows of one lane only (slot%stepShards
// keeps the lane's bits), so a lane lists its rows' updates itself.
var _ [stepShards % rowLanes]struct{} = [0]struct{}{}

// lookupStep looks up the step's features, one lane per unit, each lane
// in log order, and lists every row update under the row's shard (in log
// order too, since a shard is of one lane). The lookups do not read what
// the log stage computes (memory features, registries), so the stage's
// lanes are units of the same job, claimed first: each does its lane's
// chunks through record last (those prepare and helpers have not done
// already), which phase 2 needs. It returns how long the longest stage
// unit took (the chain of log-order work no worker can share) and the
// error of the first lane that failed.
func (t *Trainer) lookupStep(ms *logStage, last int) (time.Duration, error) {
	st := &t.step
	var took [stageLanes]time.Duration
	t.pool.run(stageLanes+rowLanes, func(_, u int) {
		if u < stageLanes {
			if ms != nil {
				took[u] = ms.awaitTimed(u, last)
			}
			return
		}
		st.errs[u-stageLanes] = t.lookupLane(u - stageLanes)
	})
	chain := slices.Max(took[:])
	for _, err := range st.errs {
		if err != nil {
			return chain, err
		}
	}
	return chain, nil
}

// scoreStep is phase 2 for one example: its slots read back from its
// lanes, then its prediction and gradients against the model as it was
// before the step, as learn and update compute them.
func (t *Trainer) scoreStep(sc *stepScratch, k int) {
	e := &t.step.ex[k]
	if e.task == nil {
		return
	}
	t.step.resolve(k)
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

// lookupLane looks up the step's features of lane l, in log order.
func (t *Trainer) lookupLane(l int) error {
	st := &t.step
	for c := range (st.n + refChunk - 1) / refChunk {
		if err := t.lookupRefs(st.chunks[c].lanes[l]); err != nil {
			return err
		}
	}
	return nil
}

// lookupRefs looks up features of one lane, in log order.
func (t *Trainer) lookupRefs(refs []laneRef) error {
	st := &t.step
	for i := range refs {
		r := &refs[i]
		e := &st.ex[r.ex]
		slot, ok := t.reuseSlot(r)
		if !ok {
			var err error
			if slot, err = t.lookupID(r.id, e.now, e.wm); err != nil {
				return err
			}
		}
		r.slot = slot
		group := uint8(groupCtx)
		if r.item() {
			if group = groupItem; r.j() >= model.ItemIDRows {
				group = groupMeta
			}
		}
		if slot >= 0 {
			sh := &st.shards[slot%stepShards]
			sh.ups = append(sh.ups, rowUpdate{ex: r.ex, slot: slot, group: group})
		}
	}
	return nil
}

// reuseSlot is reuse for one context feature: when r's example shares
// the context of the example before it in the step, the feature's slot
// there (found by this lane, as the same id) is its slot if it still
// holds its live, unexpired row; it is touched as lookup would. ok is
// false otherwise: the feature is looked up.
func (t *Trainer) reuseSlot(r *laneRef) (slot int32, ok bool) {
	st := &t.step
	e := &st.ex[r.ex]
	if r.item() || r.ex == 0 || !e.p.f.shared {
		return -1, false
	}
	if slot = st.ref(int(r.ex)-1, st.ex[r.ex-1].ctx[r.j()]).slot; slot < 0 {
		return -1, false
	}
	if !t.rows.holds(slot, r.id, e.wm) {
		return -1, false
	}
	t.rows.touch(slot, e.now)
	return slot, true
}
