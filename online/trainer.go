package online

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// TrainerOptions configures a Trainer.
type TrainerOptions struct {
	Model ModelConfig
	// Dir is the Pebble directory of the parameter store.
	Dir    string
	Client stream.ClientOptions
	Topic  string // the examples topic
	// CommitInterval bounds the time between two store commits.
	CommitInterval time.Duration
	Metrics        *metrics.Set
	Logf           func(format string, args ...any)
}

// row is one embedding row: Dim weights and a bias, with its AdaGrad
// accumulators (acc[0] row-wise for the weights, acc[1] for the bias) and
// the event time it was last used.
type row struct {
	w    []float32
	acc  []float32
	last int64
}

type taskState struct {
	p                  *TaskParams
	accScale, accShift []float32
	accBias            float32
}

// Trainer is the incremental trainer of the shared model. Apply and the
// consume loop hold mu; Capture takes it to read a consistent state.
type Trainer struct {
	opts TrainerOptions
	cfg  ModelConfig
	feat Featurizer

	mu        sync.Mutex
	store     *Store
	rows      map[uint64]*row
	tasks     map[string]*taskState
	items     map[string]stream.ItemMeta
	pop       map[string]map[string]float64
	offsets   map[int32]int64 // next offset to consume, per examples partition
	watermark int64           // newest event time applied, ms
	applied   int64           // examples applied, ever
	version   int64           // last snapshot version taken from this store

	dirtyRows  map[uint64]struct{}
	dirtyTasks map[string]struct{}
	dirtyItems map[string]struct{}
	dirtyPop   map[string]struct{}
	lastCommit time.Time

	progress *Progress
	scratch  scratch
}

// scratch holds the per-example buffers of Apply.
type scratch struct {
	ctxIDs, itemIDs   []uint64
	ctxRows, itemRows [][]float32
	c, cp, v, gc, gv  []float32
	grad              []float32
}

// OpenTrainer opens the parameter store and loads the model it holds.
func OpenTrainer(opts TrainerOptions) (*Trainer, error) {
	if err := opts.Model.Validate(); err != nil {
		return nil, err
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	st, err := OpenStore(opts.Dir, opts.Model.Dim)
	if err != nil {
		return nil, err
	}
	t := &Trainer{
		opts: opts, cfg: opts.Model, feat: Featurizer{Isolated: opts.Model.Isolated}, store: st,
		rows: map[uint64]*row{}, tasks: map[string]*taskState{}, items: map[string]stream.ItemMeta{},
		pop: map[string]map[string]float64{}, offsets: map[int32]int64{},
		dirtyRows: map[uint64]struct{}{}, dirtyTasks: map[string]struct{}{},
		dirtyItems: map[string]struct{}{}, dirtyPop: map[string]struct{}{},
		progress: NewProgress(opts.Metrics), lastCommit: time.Now(),
	}
	if err := st.load(t); err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot load parameter store at %q: %w", opts.Dir, err)
	}
	d := t.cfg.Dim
	t.scratch = scratch{c: make([]float32, d), cp: make([]float32, d), v: make([]float32, d+1),
		gc: make([]float32, d), gv: make([]float32, d), grad: make([]float32, d+1)}
	opts.Metrics.GetOrCreateGauge("unirec_trainer_examples_applied_total", func() float64 { return float64(t.Applied()) })
	opts.Metrics.GetOrCreateGauge("unirec_trainer_rows", func() float64 { t.mu.Lock(); defer t.mu.Unlock(); return float64(len(t.rows)) })
	return t, nil
}

// Progress returns the progressive-validation metrics.
func (t *Trainer) Progress() *Progress { return t.progress }

// Applied returns how many examples the model has learned from, ever.
func (t *Trainer) Applied() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.applied
}

// Close commits and closes the store.
func (t *Trainer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := t.store.commit(t)
	t.clearDirty()
	if cerr := t.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// Run consumes the examples topic from the stored offsets until ctx ends,
// committing parameters and offsets together every CommitInterval.
func (t *Trainer) Run(ctx context.Context) error {
	cl, err := t.consumer(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	var ex stream.Example
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			break
		}
		t.mu.Lock()
		var derr error
		fetches.EachRecord(func(r *kgo.Record) {
			t.offsets[r.Partition] = r.Offset + 1
			if err := stream.DecodeExample(r.Value, &ex); err != nil {
				derr = fmt.Errorf("examples %d/%d: %w", r.Partition, r.Offset, err)
				return
			}
			t.apply(&ex)
		})
		if derr != nil && t.opts.Logf != nil {
			t.opts.Logf("trainer: skipping undecodable example: %v", derr)
		}
		var cerr error
		if time.Since(t.lastCommit) >= t.opts.CommitInterval {
			cerr = t.commitLocked()
		}
		t.mu.Unlock()
		if cerr != nil {
			return cerr
		}
	}
	return nil
}

// consumer starts a read-committed consumer at the stored offsets of every
// partition of the examples topic.
func (t *Trainer) consumer(ctx context.Context) (*kgo.Client, error) {
	admin, err := kgo.NewClient(t.opts.Client.Opts()...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer admin.Close()
	topics, err := kadm.NewClient(admin).ListTopics(ctx, t.opts.Topic)
	if err != nil {
		return nil, fmt.Errorf("cannot describe topic %q: %w", t.opts.Topic, err)
	}
	td, ok := topics[t.opts.Topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("cannot find topic %q: %v", t.opts.Topic, td.Err)
	}
	parts := map[int32]kgo.Offset{}
	t.mu.Lock()
	for _, p := range td.Partitions.Numbers() {
		if o, ok := t.offsets[p]; ok {
			parts[p] = kgo.NewOffset().At(o)
		} else {
			parts[p] = kgo.NewOffset().AtStart()
		}
	}
	t.mu.Unlock()
	cl, err := kgo.NewClient(append(t.opts.Client.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.opts.Topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create examples consumer: %w", err)
	}
	return cl, nil
}

// Commit writes parameters and offsets to the store now.
func (t *Trainer) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.commitLocked()
}

func (t *Trainer) commitLocked() error {
	if err := t.store.commit(t); err != nil {
		return err
	}
	t.clearDirty()
	t.lastCommit = time.Now()
	return nil
}

func (t *Trainer) clearDirty() {
	clear(t.dirtyRows)
	clear(t.dirtyTasks)
	clear(t.dirtyItems)
	clear(t.dirtyPop)
}

// Apply learns from one example (progressive validation first).
func (t *Trainer) Apply(ex *stream.Example) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.apply(ex)
}

func (t *Trainer) popularity(task string) map[string]float64 {
	m := t.pop[task]
	if m == nil {
		m = map[string]float64{}
		t.pop[task] = m
	}
	return m
}

func (t *Trainer) task(name string) *taskState {
	ts := t.tasks[name]
	if ts == nil {
		d := t.cfg.Dim
		ts = &taskState{p: NewTaskParams(d), accScale: make([]float32, d), accShift: make([]float32, d)}
		t.tasks[name] = ts
	}
	return ts
}

// getRow returns the row of id, creating it with its deterministic initial
// value: the model is a pure function of the examples it saw, in order.
func (t *Trainer) getRow(id uint64, now int64) *row {
	r := t.rows[id]
	if r == nil {
		d := t.cfg.Dim
		r = &row{w: make([]float32, d+1), acc: make([]float32, 2)}
		initRow(r.w[:d], id, float32(t.cfg.InitScale))
		t.rows[id] = r
	}
	if now > r.last {
		r.last = now
	}
	t.dirtyRows[id] = struct{}{}
	return r
}

// initRow fills w with uniform values in [-scale, scale) drawn from a
// splitmix64 stream seeded by the feature id.
func initRow(w []float32, id uint64, scale float32) {
	x := id
	for i := range w {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		w[i] = (float32(z>>40)/float32(1<<24)*2 - 1) * scale
	}
}

func (t *Trainer) apply(ex *stream.Example) {
	s := &t.scratch
	now := ex.EventTime
	s.ctxIDs = t.feat.Context(s.ctxIDs[:0], ex.Task, ex.Context, time.UnixMilli(now))
	s.itemIDs = t.feat.Item(s.itemIDs[:0], ex.Task, ex.ItemID, ex.Item)
	s.ctxRows, s.itemRows = s.ctxRows[:0], s.itemRows[:0]
	ctxR := make([]*row, 0, len(s.ctxIDs))
	itemR := make([]*row, 0, len(s.itemIDs))
	for _, id := range s.ctxIDs {
		r := t.getRow(id, now)
		ctxR = append(ctxR, r)
		s.ctxRows = append(s.ctxRows, r.w)
	}
	for _, id := range s.itemIDs {
		r := t.getRow(id, now)
		itemR = append(itemR, r)
		s.itemRows = append(s.itemRows, r.w)
	}
	ts := t.task(ex.Task)
	t.dirtyTasks[ex.Task] = struct{}{}
	ctxBias := ContextVector(s.cp, s.c, ts.p, s.ctxRows)
	ItemVector(s.v, s.itemRows)
	z := Logit(s.cp, ctxBias, s.v)
	p := Sigmoid(z)
	t.progress.Observe(ex.Task, p, ex.Label, ex.Weight)
	t.update(ts, ctxR, itemR, ex.Weight*(p-ex.Label))
	t.track(ex)
}

// update applies one AdaGrad step given dLoss/dLogit.
func (t *Trainer) update(ts *taskState, ctxR, itemR []*row, dz float32) {
	if math.IsNaN(float64(dz)) || math.IsInf(float64(dz), 0) {
		return
	}
	clip := float32(t.cfg.GradientClip)
	dz = min(max(dz, -clip), clip)
	s := &t.scratch
	d := t.cfg.Dim
	for i := 0; i < d; i++ {
		gcp := dz * s.v[i]
		s.gv[i] = dz * s.cp[i]
		s.gc[i] = gcp * ts.p.Scale[i]
		adagrad(&ts.p.Scale[i], &ts.accScale[i], gcp*s.c[i], float32(t.cfg.DenseLearningRate))
		adagrad(&ts.p.Shift[i], &ts.accShift[i], gcp, float32(t.cfg.DenseLearningRate))
	}
	adagrad(&ts.p.Bias, &ts.accBias, dz, float32(t.cfg.DenseLearningRate))
	t.updateRows(ctxR, s.gc, dz)
	t.updateRows(itemR, s.gv, dz)
}

// updateRows applies row-wise AdaGrad to rows that were summed (and scaled
// by 1/sqrt(n)) into a vector whose gradient is g; dz is the bias gradient.
func (t *Trainer) updateRows(rows []*row, g []float32, dz float32) {
	if len(rows) == 0 {
		return
	}
	s := &t.scratch
	d := t.cfg.Dim
	inv := float32(1 / math.Sqrt(float64(len(rows))))
	l2 := float32(t.cfg.L2)
	lr := float32(t.cfg.LearningRate)
	for _, r := range rows {
		var sq float32
		for i := 0; i < d; i++ {
			s.grad[i] = g[i]*inv + l2*r.w[i]
			sq += s.grad[i] * s.grad[i]
		}
		r.acc[0] += sq / float32(d)
		step := lr / (float32(math.Sqrt(float64(r.acc[0]))) + 1e-6)
		axpy(-step, s.grad[:d], r.w[:d])
		adagrad(&r.w[d], &r.acc[1], dz, lr)
	}
}

func adagrad(w, acc *float32, g, lr float32) {
	*acc += g * g
	*w -= lr * g / (float32(math.Sqrt(float64(*acc))) + 1e-6)
}

// track updates the item registry, popularity and the watermark.
func (t *Trainer) track(ex *stream.Example) {
	t.applied++
	if ex.EventTime > t.watermark {
		t.watermark = ex.EventTime
	}
	if old, ok := t.items[ex.ItemID]; !ok || (ex.Item.Type != "" && !sameMeta(old, ex.Item)) {
		t.items[ex.ItemID] = ex.Item
		t.dirtyItems[ex.ItemID] = struct{}{}
	}
	if ex.Label > 0 {
		t.popularity(ex.Task)[ex.ItemID] += float64(ex.Weight)
		t.dirtyPop[ex.Task+"\x00"+ex.ItemID] = struct{}{}
	}
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
