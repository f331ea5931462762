// Package freshness measures how fast what users do reaches serving: it
// runs the real pipeline in one process (embedded broker, ingest, trainer,
// snapshot publisher, subscriber, replica), produces events at a steady
// rate and measures, for a sample of events, the time from producing the
// event until the replica serves a model whose watermark includes it. It
// also reports snapshot sizes, publish and apply times, and request
// latency while deltas are applied versus a quiet baseline.
//
// It is a benchmark, never a test: nothing here asserts a time.
package freshness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// Options configures a run.
type Options struct {
	Dir      string        // data dir for the broker and Pebble
	Rate     float64       // events per second
	Duration time.Duration // of the measured phase
	// Warmup runs the pipeline before measuring, so the model and the
	// catalog exist.
	Warmup time.Duration
	// SampleEvery measures one event in this many.
	SampleEvery int
	// Snapshot settings, as in the config file.
	Interval, FullInterval time.Duration
	Encoding               snapshot.Encoding
	// SkipIngest produces the labelled examples the events would become
	// straight to the examples topic: it measures trainer -> snapshot ->
	// replica alone.
	SkipIngest bool
	// RequestRate is the rate of recommend requests during the run.
	RequestRate float64
	Logf        func(format string, args ...any)
	// Progress draws a bar (events or requests, rate, ETA) for each
	// fixed-length phase; nil draws none.
	Progress io.Writer
}

// Report holds the figures of one run.
type Report struct {
	Events, Samples, Unseen   int
	AchievedRate              float64
	FreshP50, FreshP99, Fresh time.Duration // Fresh is the max
	// Where a sampled event's time went: until the first snapshot whose
	// watermark includes it was committed (ingest, trainer, the wait for
	// the next capture, the publication), then until a replica served it
	// (fetch, verify, decode, apply).
	ToPublishP50, ToPublishP99 time.Duration
	ToServeP50, ToServeP99     time.Duration
	Fulls, Deltas              int
	FullBytes, DeltaBytes      int // newest full's and mean delta's compressed sizes
	DeltaRows, TotalRows       int // mean rows per delta; rows of the model
	PublishP50, PublishP99     time.Duration
	ApplyP50, ApplyP99         time.Duration
	ReqP50, ReqP99             time.Duration // during the run
	OverlapN                   int           // requests that overlapped an apply
	OverlapP99, OtherP99       time.Duration // p99 of those, and of the others in the same run
	BaseP50, BaseP99           time.Duration // pipeline idle, no deltas arriving
	ColdStart                  time.Duration // a new replica to serve the newest version
	ColdApplied                int           // snapshots it applied to get there
	// The distributions behind the percentiles, for plots.
	FreshAll, ReqAll, BaseAll, ApplyAll, PublishAll []time.Duration `json:"-"`
}

func (r *Report) String() string {
	return fmt.Sprintf(`events %d at %.0f/s; freshness over %d sampled events (%d never seen): p50 %s p99 %s max %s
of which produced -> in a published snapshot p50 %s p99 %s; published -> served p50 %s p99 %s
snapshots: %d full (newest %d bytes), %d deltas (mean %d bytes, %d of %d rows); publish p50 %s p99 %s; replica apply p50 %s p99 %s
recommend latency during the run: p50 %s p99 %s; p99 of the %d requests overlapping an apply %s vs the others %s (ratio %.2f); idle baseline p50 %s p99 %s
cold start: a new replica serves the newest version after %s (%d snapshots applied)`,
		r.Events, r.AchievedRate, r.Samples, r.Unseen, r.FreshP50, r.FreshP99, r.Fresh,
		r.ToPublishP50, r.ToPublishP99, r.ToServeP50, r.ToServeP99,
		r.Fulls, r.FullBytes, r.Deltas, r.DeltaBytes, r.DeltaRows, r.TotalRows, r.PublishP50, r.PublishP99, r.ApplyP50, r.ApplyP99,
		r.ReqP50, r.ReqP99, r.OverlapN, r.OverlapP99, r.OtherP99, float64(r.OverlapP99)/float64(max(r.OtherP99, 1)), r.BaseP50, r.BaseP99, r.ColdStart, r.ColdApplied)
}

func (o *Options) fill() {
	if o.Rate <= 0 {
		o.Rate = 20_000
	}
	if o.Duration <= 0 {
		o.Duration = 20 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 5 * time.Second
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 100
	}
	def := pipeline.DefaultConfig().Snapshot
	if o.Interval <= 0 {
		o.Interval = def.Interval
	}
	if o.FullInterval <= 0 {
		o.FullInterval = def.FullInterval
	}
	if o.Encoding == "" {
		o.Encoding = snapshot.EncodingFloat32
	}
	if o.RequestRate <= 0 {
		o.RequestRate = 200
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// run is one benchmark run: the pipeline it started and what it timed.
type run struct {
	o       Options
	cfg     pipeline.Config
	reg     *ingest.Registry
	replica *serve.Replica

	mu                sync.Mutex
	pubs              []published // every committed snapshot, in order
	publish, apply    []time.Duration
	applying          []span
	fullB, deltaB     []int
	lastFull          int
	deltaRows, totalR []int
}

// Config is the configuration a run starts the pipeline with: the
// defaults, its data under Dir, the broker on a free port, and the run's
// snapshot settings.
func (o Options) Config() (pipeline.Config, error) {
	cfg := pipeline.DefaultConfig()
	cfg.DataDir, cfg.Broker.Port, cfg.Role = o.Dir, 0, pipeline.RoleAll // as `unirec run`: snapshots signed with a generated key
	cfg.Snapshot.Interval, cfg.Snapshot.FullInterval, cfg.Snapshot.Encoding = o.Interval, o.FullInterval, o.Encoding
	cfg.Demo.Enabled = false
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, cfg.LoadSecrets()
}

// Run runs the benchmark and returns its figures. The pipeline is the one
// `unirec run` starts (deploy/pipeline), timed through its hooks; the
// first stage to fail ends the run with its error.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.fill()
	cfg, err := o.Config()
	if err != nil {
		return nil, err
	}
	b, err := pipeline.StartBroker(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	r := &run{o: o, cfg: cfg}
	if r.reg, err = cfg.Registry(); err != nil {
		return nil, err
	}
	p := pipeline.NewProcess(ctx, cfg, o.Logf)
	p.Hooks = pipeline.Hooks{Published: r.published, Applied: r.applied}
	var rep *Report
	if err = r.start(p); err == nil {
		rep, err = r.measure(p.Context())
	}
	if stopErr := p.Stop(); stopErr != nil {
		return nil, stopErr
	}
	return rep, err
}

// start starts every stage in p.
func (r *run) start(p *pipeline.Process) error {
	if err := pipeline.StartIngest(p); err != nil {
		return err
	}
	if err := pipeline.StartTrainer(p); err != nil {
		return err
	}
	var err error
	r.replica, err = pipeline.StartReplica(p)
	return err
}

// published is when a snapshot was committed and the newest event time
// it includes.
type published struct {
	at        time.Time
	watermark int64 // ms
}

// published records a committed snapshot.
func (r *run) published(m *snapshot.Manifest, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pubs = append(r.pubs, published{at: time.Now(), watermark: m.Watermark.UnixMilli()})
	r.publish = append(r.publish, took)
	if m.Kind == snapshot.KindFull {
		r.fullB, r.lastFull = append(r.fullB, m.Bytes), m.Bytes
	} else {
		r.deltaB, r.deltaRows = append(r.deltaB, m.Bytes), append(r.deltaRows, m.Rows)
	}
	r.totalR = append(r.totalR, m.TotalRows)
}

// span is the time one apply or request took.
type span struct{ start, end time.Time }

// applied records a replica's apply.
func (r *run) applied(_ *snapshot.Update, start, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.apply = append(r.apply, end.Sub(start))
	r.applying = append(r.applying, span{start, end})
}

// overlapping splits request latencies into those that overlapped an
// apply and the others.
func (p *run) overlapping(reqs []span) (during, other []time.Duration) {
	p.mu.Lock()
	applies := slices.Clone(p.applying)
	p.mu.Unlock()
	for _, r := range reqs {
		hit := false
		for _, a := range applies {
			if r.start.Before(a.end) && a.start.Before(r.end) {
				hit = true
				break
			}
		}
		if hit {
			during = append(during, r.end.Sub(r.start))
		} else {
			other = append(other, r.end.Sub(r.start))
		}
	}
	return during, other
}

// sample is one measured event.
type sample struct {
	eventTime int64 // ms
	produced  time.Time
}

// measure warms up, then produces events at the rate while sampling
// freshness and request latency, then measures a quiet baseline.
func (p *run) measure(ctx context.Context) (*Report, error) {
	topic := p.cfg.Topics.Events
	if p.o.SkipIngest {
		topic = p.cfg.Topics.Examples
	}
	cl, err := kgo.NewClient(append(p.cfg.Kafka.Opts(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return nil, fmt.Errorf("cannot create event producer: %w", err)
	}
	defer cl.Close()
	p.o.Logf("freshness: warming up for %s at %.0f events/s", p.o.Warmup, p.o.Rate)
	if _, err := p.produce(ctx, cl, p.o.Warmup, nil); err != nil {
		return nil, err
	}
	p.resetStats()
	samples := make(chan sample, 1<<16)
	fresh := make(chan []time.Duration, 1)
	unseen := make(chan int, 1)
	var toPub, toServe []time.Duration
	go func() { f, u, tp, ts := p.watch(ctx, samples); toPub, toServe = tp, ts; fresh <- f; unseen <- u }()
	lat := make(chan []span, 1)
	reqCtx, stopReq := context.WithCancel(ctx)
	go func() { lat <- p.requests(reqCtx, nil) }()
	p.o.Logf("freshness: measuring for %s", p.o.Duration)
	start := time.Now()
	n, err := p.produce(ctx, cl, p.o.Duration, samples)
	elapsed := time.Since(start)
	close(samples)
	stopReq()
	if err != nil {
		return nil, err
	}
	rep := &Report{Events: n, AchievedRate: float64(n) / elapsed.Seconds()}
	f := <-fresh
	rep.Unseen = <-unseen
	rep.Samples, rep.FreshAll = len(f), f
	rep.FreshP50, rep.FreshP99, rep.Fresh = bench.Percentile(f, 0.5), bench.Percentile(f, 0.99), bench.Percentile(f, 1)
	rep.ToPublishP50, rep.ToPublishP99 = bench.Percentile(toPub, 0.5), bench.Percentile(toPub, 0.99)
	rep.ToServeP50, rep.ToServeP99 = bench.Percentile(toServe, 0.5), bench.Percentile(toServe, 0.99)
	reqs := <-lat
	all := durations(reqs)
	rep.ReqP50, rep.ReqP99, rep.ReqAll = bench.Percentile(all, 0.5), bench.Percentile(all, 0.99), all
	overlap, other := p.overlapping(reqs)
	rep.OverlapN, rep.OverlapP99, rep.OtherP99 = len(overlap), bench.Percentile(overlap, 0.99), bench.Percentile(other, 0.99)
	p.o.Logf("freshness: baseline latency without deltas")
	time.Sleep(2 * p.o.Interval) // the last deltas land
	baseCtx, stopBase := context.WithTimeout(ctx, min(p.o.Duration, 10*time.Second))
	bar := bench.NewProgress(p.o.Progress, "requests", int(p.o.RequestRate*min(p.o.Duration, 10*time.Second).Seconds()))
	base := durations(p.requests(baseCtx, bar))
	stopBase()
	rep.BaseP50, rep.BaseP99, rep.BaseAll = bench.Percentile(base, 0.5), bench.Percentile(base, 0.99), base
	p.fill(rep)
	rep.ColdStart, rep.ColdApplied, err = p.coldStart(ctx)
	return rep, err
}

// coldStart starts a second replica on the snapshots topic and times how
// long it takes to serve the version the first one serves.
func (p *run) coldStart(ctx context.Context) (time.Duration, int, error) {
	want := p.replica.Model().Version
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: p.reg})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var applied atomic.Int64
	start := time.Now()
	go snapshot.Subscribe(ctx, snapshot.SubscriberOptions{Client: p.cfg.Kafka, Topic: p.cfg.Topics.Snapshots, Key: p.cfg.Secrets.SnapshotKey},
		snapshot.Handler{Apply: func(u *snapshot.Update) error { applied.Add(1); return r.Apply(u) }})
	for ctx.Err() == nil {
		if m := r.Model(); m != nil && m.Version >= want {
			return time.Since(start), int(applied.Load()), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("cannot cold start a replica to version %d within a minute", want)
}

func (p *run) resetStats() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.publish, p.apply, p.applying, p.fullB, p.deltaB, p.deltaRows, p.totalR = nil, nil, nil, nil, nil, nil, nil
}

func (p *run) fill(rep *Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep.PublishP50, rep.PublishP99 = bench.Percentile(p.publish, 0.5), bench.Percentile(p.publish, 0.99)
	rep.ApplyP50, rep.ApplyP99 = bench.Percentile(p.apply, 0.5), bench.Percentile(p.apply, 0.99)
	rep.ApplyAll, rep.PublishAll = slices.Clone(p.apply), slices.Clone(p.publish)
	rep.Fulls, rep.Deltas = len(p.fullB), len(p.deltaB)
	rep.FullBytes, rep.DeltaBytes, rep.DeltaRows, rep.TotalRows = p.lastFull, mean(p.deltaB), mean(p.deltaRows), mean(p.totalR)
}

// produce sends click events at the rate for d, with event times at the
// wall clock; one in SampleEvery goes to samples.
func (p *run) produce(ctx context.Context, cl *kgo.Client, d time.Duration, samples chan<- sample) (int, error) {
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	bar := bench.NewProgress(p.o.Progress, "events", int(p.o.Rate*d.Seconds()))
	start := time.Now()
	n := 0
	defer func() { bar.Done(n) }()
	for time.Since(start) < d && ctx.Err() == nil {
		bar.Update(n)
		due := int(time.Since(start).Seconds() * p.o.Rate)
		for ; n < due; n++ {
			now := time.Now()
			ev := ingest.Event{EventID: fmt.Sprintf("b-%d-%d", start.UnixNano(), n), Time: now.UTC(),
				Canvas: "notifications", Action: "click", ItemID: fmt.Sprintf("m-%d", rng.IntN(2000)),
				Context: map[string]string{"user_id": fmt.Sprintf("u-%d", rng.IntN(50_000)), "country": "US", "device": "tv"}}
			b, err := p.encode(&ev)
			if err != nil {
				return n, err
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(ev.Context["user_id"]), Value: b}, nil)
			if samples != nil && n%p.o.SampleEvery == 0 {
				samples <- sample{eventTime: now.UnixMilli(), produced: now}
			}
		}
		time.Sleep(time.Millisecond)
	}
	return n, cl.Flush(ctx)
}

// encode returns the event as JSON, or as the positive example ingest
// would make of it.
func (p *run) encode(ev *ingest.Event) ([]byte, error) {
	if p.o.SkipIngest {
		ex := p.reg.Normalize(ev)
		ex.Label, ex.Weight = 1, 1
		return stream.AppendExample(nil, &ex), nil
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("cannot encode event: %w", err)
	}
	return b, nil
}

// watch polls the replica's live model and measures, for each sample, the
// time from production until the model's watermark includes it, and how
// that time splits at the first committed snapshot that includes it.
// Samples still unseen 10 s after production ends are counted, not
// measured.
func (p *run) watch(ctx context.Context, samples <-chan sample) (fresh []time.Duration, unseen int, toPub, toServe []time.Duration) {
	var pending []sample
	open := true
	var deadline time.Time
	for ctx.Err() == nil {
		for drained := false; open && !drained; {
			select {
			case s, ok := <-samples:
				if !ok {
					open, deadline = false, time.Now().Add(10*time.Second)
				} else {
					pending = append(pending, s)
				}
			default:
				drained = true
			}
		}
		if m := p.replica.Model(); m != nil {
			wm := m.Watermark.UnixMilli()
			now := time.Now()
			i := 0
			for ; i < len(pending) && pending[i].eventTime <= wm; i++ {
				fresh = append(fresh, now.Sub(pending[i].produced))
				if at, ok := p.publishedAt(pending[i].eventTime); ok {
					toPub, toServe = append(toPub, at.Sub(pending[i].produced)), append(toServe, now.Sub(at))
				}
			}
			pending = pending[i:]
		}
		if !open && (len(pending) == 0 || time.Now().After(deadline)) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fresh, len(pending), toPub, toServe
}

// publishedAt is when the first snapshot including event time t (ms) was
// committed.
func (p *run) publishedAt(t int64) (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.pubs), func(i int) bool { return p.pubs[i].watermark >= t })
	if i == len(p.pubs) {
		return time.Time{}, false
	}
	return p.pubs[i].at, true
}

// requests sends recommend requests at RequestRate until ctx ends and
// returns when each ran, counting them on bar.
func (p *run) requests(ctx context.Context, bar *bench.Progress) []span {
	var out []span
	defer func() { bar.Done(len(out)) }()
	tick := time.NewTicker(time.Duration(float64(time.Second) / p.o.RequestRate))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		req := &serve.Request{UseCase: "notifications", K: 10, Context: map[string]string{"user_id": fmt.Sprintf("u-%d", i%50_000), "country": "US"}}
		start := time.Now()
		if _, aerr := p.replica.Recommend(ctx, req); aerr == nil {
			out = append(out, span{start, time.Now()})
		}
		bar.Update(len(out))
	}
}

func durations(s []span) []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.end.Sub(x.start)
	}
	return out
}

func mean(v []int) int {
	if len(v) == 0 {
		return 0
	}
	t := 0
	for _, x := range v {
		t += x
	}
	return t / len(v)
}
