package online

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// TrainerOptions configures a Trainer.
type TrainerOptions struct {
	Model model.ModelConfig
	// Dir is the Pebble directory of the parameter store.
	Dir string
	// FS is the filesystem of Dir; nil is the operating system's. Tests
	// pass a fault-injecting one (pebble's vfs/errorfs).
	FS     vfs.FS
	Client stream.ClientOptions
	Topic  string // the examples topic
	// CommitInterval bounds the time between two store commits.
	CommitInterval time.Duration
	// MaxRows bounds the rows held in memory; 0 holds the whole model.
	// Above it, clean rows are evicted (they are in Pebble) and paged back
	// in on use, so learning is the same as with no bound.
	MaxRows int
	// MinCount is how many sightings a feature needs before it gets a row
	// (admission); 0 or 1 admits at once.
	MinCount int
	// TTL expires rows and sightings unused for this long in event time;
	// 0 never expires.
	TTL time.Duration
	// ResetOffsets says what to do with a stored offset the examples topic
	// no longer has (records deleted, topic recreated): "" fails with
	// ErrOffsetOutOfRange, ResetEarliest relearns from the topic's start,
	// ResetLatest skips to its end.
	ResetOffsets string
	// Workers learn a mini-batch (model.step > 1) together; 0 is
	// GOMAXPROCS. The model does not depend on it.
	Workers int
	// PrepareWorkers decode and featurize each batch of records together,
	// in chunks; 0 is a quarter of GOMAXPROCS, at least one. The model does
	// not depend on it.
	PrepareWorkers int
	Metrics        *metrics.Set
	Logf           func(format string, args ...any)
}

// The ResetOffsets choices.
const (
	ResetEarliest = "earliest"
	ResetLatest   = "latest"
)

// ErrOffsetOutOfRange is returned by Run when a stored offset is outside
// the examples topic and TrainerOptions.ResetOffsets is empty.
var ErrOffsetOutOfRange = errors.New("trainer offset out of range")

type taskState struct {
	p                  *model.TaskParams
	accScale, accShift []float32
	accBias            float32
	accMemory          map[string]float32 // AdaGrad accumulators of p.Memory
}

// Trainer is the incremental trainer of the shared model. Apply and the
// consume loop hold mu; Capture takes it to read a consistent state.
type Trainer struct {
	opts TrainerOptions
	cfg  model.ModelConfig
	feat model.Featurizer

	mu        sync.Mutex
	store     *Store
	rows      *rows
	export    rowExport // rows as the last capture saw them
	paging    bool      // rows may be in Pebble only
	tasks     map[string]*taskState
	items     map[string]stream.ItemMeta
	pop       map[string]*popTable // per task
	mem       memories
	offsets   map[int32]int64 // next offset to consume, per examples partition
	watermark int64           // newest event time applied, ms
	applied   atomic.Int64    // examples applied, ever; read without mu
	version   int64           // last snapshot version taken from this store

	inflight   chan error // the commit being synced, nil when none
	closed     bool
	dirtyTasks map[string]struct{}
	dirtyItems map[string]struct{}
	lastCommit time.Time

	// stage is the log stage of the batch being learned, nil between
	// batches: prepare does its chunks while it would otherwise wait.
	stage atomic.Pointer[logStage]

	progress *Progress
	scratch  scratch
	step     stepState // the mini-batch being learned (step.go)
	pool     *workers  // its workers, while Run runs with model.step > 1
	counters trainerCounters
	// broken is the error of an example that failed part-way (its partial
	// changes, rows and sightings, are in memory without its offset) or of
	// a failed commit (Pebble must not be written again): nothing is
	// committed again; a restart resumes from the last commit.
	broken error
}

// trainerCounters are the parameter-store metrics.
type trainerCounters struct {
	evicted, pagedIn, admitted, expired, commits *metrics.Counter
	// stepLogOrder and stepParallel: seconds of mini-batch learning in
	// log order (phase 1) and in parallel (phases 2 and 3; step.go).
	stepLogOrder, stepParallel *metrics.FloatCounter
	steps                      *metrics.Counter
}

// Mini-batch phase seconds: StepSecondsLogOrder / (it + StepSecondsParallel)
// is the share no worker can take (Amdahl's serial fraction).
const (
	StepSecondsLogOrder = `unirec_trainer_step_seconds_total{phase="log_order"}`
	StepSecondsParallel = `unirec_trainer_step_seconds_total{phase="parallel"}`
	// StepsTotal counts mini-batch steps: examples applied / steps is the
	// mean step (transactions shorter than model.step cut it short).
	StepsTotal = "unirec_trainer_steps_total"
)

// scratch holds the per-example buffers of apply.
type scratch struct {
	f                   features // of an example applied directly (Apply)
	ctxSlots, itemSlots []int32  // -1: feature without a row (not admitted)
	ctxRows, itemRows   [][]float32
	scoreBufs
	gc, gv         []float32
	gScale, gShift []float32 // the task adapter's gradients
	grad           []float32
}

// OpenTrainer opens the parameter store and loads the model it holds (up
// to MaxRows rows of it).
func OpenTrainer(opts TrainerOptions) (*Trainer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	st, err := OpenStore(opts.Dir, opts.Model.Dim, opts.FS)
	if err != nil {
		return nil, err
	}
	set := opts.Metrics
	t := &Trainer{
		opts: opts, cfg: opts.Model, feat: model.Featurizer{Isolated: opts.Model.Isolated}, store: st,
		rows:   newRows(opts.Model.Dim, opts.Model.Accumulators(), opts.MinCount, opts.TTL.Milliseconds()),
		paging: opts.MaxRows > 0, tasks: map[string]*taskState{}, items: map[string]stream.ItemMeta{},
		pop: map[string]*popTable{}, mem: newMemories(opts.Model.Memory, opts.TTL.Milliseconds()), offsets: map[int32]int64{},
		dirtyTasks: map[string]struct{}{},
		dirtyItems: map[string]struct{}{},
		progress:   NewProgress(set), lastCommit: time.Now(),
		counters: trainerCounters{
			evicted: set.GetOrCreateCounter("unirec_trainer_rows_evicted_total"), pagedIn: set.GetOrCreateCounter("unirec_trainer_rows_paged_in_total"),
			admitted: set.GetOrCreateCounter("unirec_trainer_features_admitted_total"), expired: set.GetOrCreateCounter("unirec_trainer_rows_expired_total"),
			commits:      set.GetOrCreateCounter("unirec_trainer_commits_total"),
			stepLogOrder: set.GetOrCreateFloatCounter(StepSecondsLogOrder), stepParallel: set.GetOrCreateFloatCounter(StepSecondsParallel),
			steps: set.GetOrCreateCounter(StepsTotal),
		},
	}
	if err := st.load(t); err != nil {
		st.Close()
		return nil, fmt.Errorf("cannot load parameter store at %q: %w", opts.Dir, err)
	}
	d := t.cfg.Dim
	t.scratch = scratch{scoreBufs: newScoreBufs(d),
		gc: make([]float32, d), gv: make([]float32, d), gScale: make([]float32, d), gShift: make([]float32, d), grad: make([]float32, d+1)}
	set.GetOrCreateGauge("unirec_trainer_examples_applied_total", func() float64 { return float64(t.Applied()) })
	set.GetOrCreateGauge("unirec_trainer_rows", func() float64 { t.mu.Lock(); defer t.mu.Unlock(); return float64(t.rows.len()) })
	set.GetOrCreateGauge("unirec_trainer_features_pending", func() float64 { t.mu.Lock(); defer t.mu.Unlock(); return float64(t.rows.pending()) })
	return t, nil
}

// Validate checks the options; errors name the config field.
func (o TrainerOptions) Validate() error {
	if err := o.Model.Validate(); err != nil {
		return err
	}
	switch {
	case o.MaxRows < 0:
		return fmt.Errorf("trainer.max_rows must not be negative, got %d", o.MaxRows)
	case o.MaxRows > 0 && o.MaxRows < 256:
		return fmt.Errorf("trainer.max_rows must be 0 (unbounded) or at least 256, got %d", o.MaxRows)
	case o.MinCount < 0:
		return fmt.Errorf("trainer.min_count must not be negative, got %d", o.MinCount)
	case o.Workers < 0 || o.Workers > 1024:
		return fmt.Errorf("trainer.workers must be in [0, 1024] (0: one per CPU), got %d", o.Workers)
	case o.PrepareWorkers < 0 || o.PrepareWorkers > 1024:
		return fmt.Errorf("trainer.prepare_workers must be in [0, 1024] (0: a quarter of the CPUs), got %d", o.PrepareWorkers)
	case o.TTL < 0:
		return fmt.Errorf("trainer.ttl must not be negative, got %s", o.TTL)
	case o.ResetOffsets != "" && o.ResetOffsets != ResetEarliest && o.ResetOffsets != ResetLatest:
		return fmt.Errorf("trainer.reset_offsets must be empty (fail), %q or %q, got %q", ResetEarliest, ResetLatest, o.ResetOffsets)
	}
	return nil
}

// Progress returns the progressive-validation metrics.
func (t *Trainer) Progress() *Progress { return t.progress }

// Applied returns how many examples the model has learned from, ever. It
// does not take the trainer's lock: pollers (the publisher, the bench
// harness) must not queue on it, as a waiter starved for a millisecond is
// then handed the lock by the learner at every batch.
func (t *Trainer) Applied() int64 { return t.applied.Load() }

// Offsets returns the next offset to consume of every examples partition
// the trainer has learned from (a copy).
func (t *Trainer) Offsets() map[int32]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.offsets)
}

// Close commits and closes the store. After an example failed part-way or
// a commit failed it commits nothing: the store keeps its last commit,
// rows and offsets together, and a restart applies the rest again, once.
// Closing again does nothing.
func (t *Trainer) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	err := t.awaitCommit()
	if t.broken != nil {
		t.logf("trainer: stopped on a parameter store error (%v): the changes since the last commit are discarded; a restart learns them again from the committed offsets", t.broken)
	} else {
		err = t.syncLocked()
	}
	if cerr := t.store.Close(); err == nil {
		err = cerr
	}
	return err
}

// Run consumes the examples topic from the stored offsets until ctx ends,
// committing parameters and offsets together every CommitInterval. Two
// goroutines form a pipeline: one polls, decodes and featurizes batches of
// records (pure functions of the bytes), the other learns from them in log
// order under the trainer's lock.
func (t *Trainer) Run(ctx context.Context) error {
	cl, err := t.consumer(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if t.cfg.Step > 1 {
		n := t.opts.Workers
		if n == 0 {
			n = runtime.GOMAXPROCS(0)
		}
		t.pool = startWorkers(n, func() *stepScratch { return newStepScratch(t.cfg.Dim) }, t.helpLogStage)
		defer t.pool.stop()
	}
	ready, free := make(chan *batch, batchesInFlight), make(chan *batch, batchesInFlight+1)
	for range batchesInFlight + 1 {
		free <- &batch{}
	}
	var perr error
	go func() {
		defer close(ready)
		perr = t.prepare(ctx, cl, free, ready)
	}()
	var aerr error
	for b := range ready {
		if aerr == nil && ctx.Err() == nil {
			if aerr = t.applyBatch(b); aerr != nil {
				cancel()
			}
		}
		free <- b
	}
	if aerr == nil {
		aerr = perr
	}
	return aerr
}

// applyBatch learns from every prepared record of b and commits when the
// commit interval has passed. The offset of a record advances only after
// it is applied, so a commit inside learn (to make room) never claims it.
func (t *Trainer) applyBatch(b *batch) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Paging commits part-way through a batch, so the memory and the
	// registries must then be exactly as far as the learner: kept inline,
	// or with mini-batches opened step by step, after the step's commit.
	var ms *logStage
	if !t.paging {
		ms = t.startLogStage(b.recs[:b.n])
		defer ms.finish()
	}
	var err error
	if t.cfg.Step > 1 {
		err = t.learnSteps(ms, b)
	} else {
		err = t.learnRecords(ms, b)
	}
	if err != nil {
		t.broken = err
		return err
	}
	if ms != nil {
		ms.finish()
	}
	if time.Since(t.lastCommit) >= t.opts.CommitInterval {
		return t.commitLocked()
	}
	return nil
}

// learnRecords learns b's records one by one.
func (t *Trainer) learnRecords(ms *logStage, b *batch) error {
	for i := range b.recs[:b.n] {
		p := &b.recs[i]
		if p.err == nil {
			if err := t.learnRecord(ms, i, p); err != nil {
				return err
			}
		}
		t.passed(p)
	}
	return nil
}

// learnSteps learns b's records step by step (step.go); prepare ends
// every batch at the end of a step.
func (t *Trainer) learnSteps(ms *logStage, b *batch) error {
	for start := 0; start < b.n; {
		end := start
		for end < b.n-1 && !b.recs[end].stepEnd {
			end++
		}
		end++
		if err := t.learnStep(ms, b.recs[start:end], start); err != nil {
			return err
		}
		for i := range b.recs[start:end] {
			t.passed(&b.recs[start+i])
		}
		start = end
	}
	return nil
}

// passed advances the offset past p, learned or, undecodable, logged and
// skipped.
func (t *Trainer) passed(p *prepared) {
	if p.err != nil && t.opts.Logf != nil {
		t.opts.Logf("trainer: skipping undecodable example %d/%d: %v", p.partition, p.offset, p.err)
	}
	t.offsets[p.partition] = p.offset + 1
}

// learnRecord learns record i of a batch, the log stage's work on it done
// by ms or, without one, inline.
func (t *Trainer) learnRecord(ms *logStage, i int, p *prepared) error {
	if ms == nil {
		return t.learnInline(&p.ex, &p.f)
	}
	ms.await(i)
	return t.learn(&p.ex, &p.f)
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
	parts, err := t.startOffsets(ctx, kadm.NewClient(admin), td.Partitions.Numbers())
	if err != nil {
		return nil, err
	}
	reset := kgo.NoResetOffset() // out of range while running: an error, never a silent rewind
	switch t.opts.ResetOffsets {
	case ResetEarliest:
		reset = kgo.NewOffset().AtStart()
	case ResetLatest:
		reset = kgo.NewOffset().AtEnd()
	}
	opts := append(t.opts.Client.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.opts.Topic: parts}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(reset))
	if t.cfg.Step > 1 {
		// Transaction markers end steps (prepare).
		opts = append(opts, kgo.KeepControlRecords())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot create examples consumer: %w", err)
	}
	return cl, nil
}

// startOffsets returns where to consume each partition: its stored offset,
// or the start for a partition never consumed. A stored offset outside the
// partition's records fails with ErrOffsetOutOfRange unless ResetOffsets
// says where to go instead (logged, and stored with the next commit).
func (t *Trainer) startOffsets(ctx context.Context, adm *kadm.Client, partitions []int32) (map[int32]kgo.Offset, error) {
	starts, err := adm.ListStartOffsets(ctx, t.opts.Topic)
	if err != nil {
		return nil, fmt.Errorf("cannot list start offsets of %q: %w", t.opts.Topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, t.opts.Topic)
	if err != nil {
		return nil, fmt.Errorf("cannot list end offsets of %q: %w", t.opts.Topic, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := map[int32]kgo.Offset{}
	for _, p := range partitions {
		o, ok := t.offsets[p]
		if !ok {
			parts[p] = kgo.NewOffset().AtStart()
			continue
		}
		so, _ := starts.Lookup(t.opts.Topic, p)
		eo, _ := ends.Lookup(t.opts.Topic, p)
		if so.Err != nil || eo.Err != nil {
			return nil, fmt.Errorf("cannot list offsets of %s partition %d: %v %v", t.opts.Topic, p, so.Err, eo.Err)
		}
		if o >= so.Offset && o <= eo.Offset {
			parts[p] = kgo.NewOffset().At(o)
			continue
		}
		to := so.Offset
		switch t.opts.ResetOffsets {
		case ResetLatest:
			to = eo.Offset
		case "":
			return nil, outOfRange(t.opts.Topic, p, o, fmt.Sprintf("it holds offsets %d to %d", so.Offset, eo.Offset))
		}
		t.logf("trainer: stored offset %d of %s partition %d is out of range [%d, %d]; reset_offsets %s: continuing at %d",
			o, t.opts.Topic, p, so.Offset, eo.Offset, t.opts.ResetOffsets, to)
		parts[p] = kgo.NewOffset().At(to)
		t.offsets[p] = to
	}
	return parts, nil
}

// outOfRange is the error of a stored offset the topic no longer has,
// with the fix.
func outOfRange(topic string, p int32, offset int64, why string) error {
	return fmt.Errorf("%w: the parameter store learned %s partition %d up to offset %d, but %s (records deleted, or the topic recreated). "+
		"Restart with --reset-offsets=earliest to learn from the topic's first record (examples kept since may be learned twice) "+
		"or --reset-offsets=latest to skip to its end (examples in between are not learned), or set trainer.reset_offsets",
		ErrOffsetOutOfRange, topic, p, offset, why)
}

func (t *Trainer) logf(format string, args ...any) {
	if t.opts.Logf != nil {
		t.opts.Logf(format, args...)
	}
}

// Commit writes parameters and offsets to the store now; they are durable
// when it returns.
func (t *Trainer) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.syncLocked()
}

// syncLocked commits and waits until the commit is on disk.
func (t *Trainer) syncLocked() error {
	if err := t.commitLocked(); err != nil {
		return err
	}
	return t.awaitCommit()
}

// awaitCommit waits for the commit in flight, if any; when it failed, the
// trainer is broken (Pebble may hold the failed batch in memory: it is
// never written again).
func (t *Trainer) awaitCommit() error {
	if t.inflight == nil {
		return nil
	}
	err := <-t.inflight
	t.inflight = nil
	if err != nil {
		t.broken = err
	}
	return err
}

// commitLocked writes everything changed since the last commit with the
// offsets in one synced batch. The batch is built here, a copy of the
// state; without a memory bound it is synced by a goroutine of its own
// while learning goes on (the next commit, a capture and Close wait for
// it: durable), with one it is synced here, then clean rows above MaxRows
// are evicted (a row must be on disk before it leaves memory).
func (t *Trainer) commitLocked() error {
	if err := t.awaitCommit(); err != nil {
		return err
	}
	if t.broken != nil {
		return fmt.Errorf("cannot commit the parameter store: the trainer stopped on an error (an example failed part-way, or a commit failed) and its changes since the last commit must not be saved: %w", t.broken)
	}
	b, err := t.store.commitBatch(t)
	if err != nil {
		t.broken = err
		return err
	}
	what := fmt.Sprintf("rows and offsets %v, %d examples applied", t.offsets, t.applied.Load())
	if t.paging {
		if err := t.store.write(b, what); err != nil {
			t.broken = err // Pebble may hold the failed batch in memory: never commit again
			return err
		}
	} else {
		done := make(chan error, 1)
		t.inflight = done
		go func() { done <- t.store.write(b, what) }()
		t.export.record(t.rows)
	}
	t.rows.committed()
	clear(t.dirtyTasks)
	clear(t.dirtyItems)
	for _, p := range t.pop {
		p.committed()
	}
	t.mem.committed()
	t.lastCommit = time.Now()
	t.counters.commits.Inc()
	if t.opts.MaxRows > 0 && t.rows.len() > t.opts.MaxRows*9/10 {
		t.counters.evicted.Add(t.rows.evict(t.opts.MaxRows * 8 / 10))
	}
	return nil
}
