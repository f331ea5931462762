package snapshot

import (
	"context"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

const topic = "unirec.snapshots"

var testKey = []byte("0123456789abcdef-test-key")

// env is a broker with a snapshots topic, a trainer fed by a synthetic
// world and a publisher.
type env struct {
	t     *testing.T
	copts stream.ClientOptions
	tr    *online.Trainer
	pub   *Publisher
	exs   []stream.Example
	next  int
}

func newEnv(t *testing.T, key []byte, enc Encoding) *env {
	t.Helper()
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(copts.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := stream.EnsureTopics(context.Background(), cl, []stream.TopicSpec{{Name: topic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultModelConfig()
	cfg.Dim = 8
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	pub, err := NewPublisher(PublisherOptions{Client: copts, Topic: topic, TransactionalID: "test-pub", ModelID: "test",
		FullInterval: time.Hour, Encoding: enc, Key: key, ChunkSize: 4096}, tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	reg, _ := ingest.NewRegistry(ingest.DefaultCanvases())
	return &env{t: t, copts: copts, tr: tr, pub: pub, exs: synth.NewWorld(synth.Options{Seed: 9}).Examples(reg, 600)}
}

// train applies the next n examples.
func (e *env) train(n int) {
	for i := 0; i < n; i++ {
		e.tr.Apply(&e.exs[e.next%len(e.exs)])
		e.next++
	}
}

// publish trains (a lot before a full snapshot, a little before a delta)
// and publishes a full snapshot or a delta.
func (e *env) publish(full bool) *Manifest {
	e.t.Helper()
	if full {
		e.train(300)
	} else {
		e.train(5)
	}
	var m *Manifest
	var err error
	if full {
		m, err = e.pub.PublishFull(context.Background())
	} else {
		m, err = e.pub.Publish(context.Background())
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// follower subscribes and folds what it receives into a capture.
type follower struct {
	mu      sync.Mutex
	model   *model.Capture
	applied []int64
	kinds   []string
	set     *metrics.Set
	cancel  context.CancelFunc
	done    chan struct{}
}

func (e *env) follow(key []byte) *follower {
	f := &follower{set: metrics.NewSet(), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		defer close(f.done)
		Subscribe(ctx, SubscriberOptions{Client: e.copts, Topic: topic, Key: key, Metrics: f.set, Logf: e.t.Logf},
			Handler{Apply: f.apply})
	}()
	e.t.Cleanup(func() { cancel(); <-f.done })
	return f
}

func (f *follower) apply(u *Update) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.Manifest.Kind == KindFull {
		f.model = &model.Capture{Config: u.Manifest.Config}
	}
	f.model = Apply(f.model, u.Delta)
	f.model.Version = u.Manifest.Version
	f.applied = append(f.applied, u.Manifest.Version)
	f.kinds = append(f.kinds, u.Manifest.Kind)
	return nil
}

// seen returns the kinds and versions applied, in order.
func (f *follower) seen() ([]string, []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.kinds), slices.Clone(f.applied)
}

func (f *follower) version() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.model == nil {
		return 0
	}
	return f.model.Version
}

func (f *follower) rejected(reason string) uint64 {
	return f.set.GetOrCreateCounter(`unirec_snapshot_rejected_total{reason="` + reason + `"}`).Get()
}

// sameModel checks that f holds exactly the last model the publisher
// published (float32 rows).
func sameModel(t *testing.T, f *follower, want *model.Capture) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.model.Version != want.Version || !reflect.DeepEqual(f.model.IDs, want.IDs) || !reflect.DeepEqual(f.model.Weights, want.Weights) ||
		!reflect.DeepEqual(f.model.Items, want.Items) || !reflect.DeepEqual(f.model.Tasks, want.Tasks) || !reflect.DeepEqual(f.model.Popular, want.Popular) {
		t.Fatalf("subscriber's model (version %d, %d rows) differs from the published one (version %d, %d rows)",
			f.model.Version, len(f.model.IDs), want.Version, len(want.IDs))
	}
}

// A replica follows a full snapshot and its signed deltas over the broker
// and ends with exactly the published model; deltas are smaller than the
// full snapshot.
func TestSubscribeFollowsTheChain(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	full := e.publish(true)
	f := e.follow(testKey)
	var last *Manifest
	for i := 0; i < 4; i++ {
		last = e.publish(false)
		if last.Kind != KindDelta || last.BaseVersion != last.Version-1 || last.FullOffset != full.FullOffset {
			t.Fatalf("snapshot %d: got %+v, want a delta on %d from the full at offset %d", i, last, last.Version-1, full.FullOffset)
		}
		if last.Bytes >= full.Bytes {
			t.Errorf("delta of %d rows is %d bytes, full of %d rows is %d", last.Rows, last.Bytes, full.Rows, full.Bytes)
		}
	}
	streamtest.WaitFor(t, 30*time.Second, "the last delta", func() bool { return f.version() == last.Version })
	sameModel(t, f, e.pub.prev)
}

// A replica with the key rejects unsigned snapshots and snapshots signed
// with another key, and counts them; it never applies them.
func TestUnauthenticatedSnapshotsAreRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"unsigned", nil}, {"other key", []byte("another-key-of-16+bytes")}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.key, EncodingFloat32)
			e.publish(true)
			e.publish(false)
			f := e.follow(testKey)
			streamtest.WaitFor(t, 30*time.Second, "rejections", func() bool { return f.rejected("unauthenticated") >= 2 })
			if v := f.version(); v != 0 {
				t.Fatalf("applied version %d", v)
			}
		})
	}
}

// A snapshot whose chunk was altered after signing fails its CRC; the
// replica rejects it and applies the next good one.
func TestCorruptChunkIsRejected(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	f := e.follow(testKey)
	e.train(50)
	c, err := e.tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
	chunks := encodeChunks(c.Version, payload, 4096)
	m := &Manifest{Version: c.Version, Kind: KindFull, Config: c.Config, Encoding: EncodingFloat32, Chunks: len(chunks),
		Checksum: checksum(payload), Bytes: len(payload), Rows: len(c.IDs), Items: len(c.Items), Tasks: len(c.Tasks), Memory: len(c.Memory)}
	for _, ch := range chunks {
		m.ChunkCRCs = append(m.ChunkCRCs, chunkCRC(ch))
	}
	chunks[0][len(chunks[0])-1] ^= 1
	if err := e.pub.produce(context.Background(), m, chunks); err != nil {
		t.Fatal(err)
	}
	good := e.publish(true)
	streamtest.WaitFor(t, 30*time.Second, "the good snapshot", func() bool { return f.version() == good.Version })
	if f.rejected("corrupt") == 0 || !reflect.DeepEqual(f.applied, []int64{good.Version}) {
		t.Fatalf("applied %v, corrupt rejections %d", f.applied, f.rejected("corrupt"))
	}
}

// A snapshot whose transaction aborted is never applied, even though all
// its chunks and its signed manifest reached the topic.
func TestAbortedSnapshotIsNeverApplied(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	e.train(50)
	c, err := e.tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
	chunks := encodeChunks(c.Version, payload, 4096)
	m := &Manifest{Version: c.Version, Kind: KindFull, Config: c.Config, Encoding: EncodingFloat32, Chunks: len(chunks),
		Checksum: checksum(payload), Bytes: len(payload), Rows: len(c.IDs), Items: len(c.Items), Tasks: len(c.Tasks), Memory: len(c.Memory)}
	for _, ch := range chunks {
		m.ChunkCRCs = append(m.ChunkCRCs, chunkCRC(ch))
	}
	ctx := context.Background()
	if err := e.pub.cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := e.pub.produceRecords(ctx, m, chunks); err != nil {
		t.Fatal(err)
	}
	if err := e.pub.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	good := e.publish(true)
	f := e.follow(testKey)
	streamtest.WaitFor(t, 30*time.Second, "the committed snapshot", func() bool { return f.version() == good.Version })
	if !reflect.DeepEqual(f.applied, []int64{good.Version}) {
		t.Fatalf("applied %v, want only %d (aborted %d)", f.applied, good.Version, c.Version)
	}
}

// A cold replica seeks to the newest full snapshot (named in the newest
// manifest) instead of replaying older ones, applies the deltas after it
// and ends on the published model.
func TestColdStartFromNewestFull(t *testing.T) {
	e := newEnv(t, testKey, EncodingInt8)
	e.publish(true)
	e.publish(false)
	newest := e.publish(true)
	last := e.publish(false)
	last = e.publish(false)
	f := e.follow(testKey)
	streamtest.WaitFor(t, 30*time.Second, "the last delta", func() bool { return f.version() == last.Version })
	f.mu.Lock()
	applied, kinds := f.applied, f.kinds
	f.mu.Unlock()
	if applied[0] != newest.Version || kinds[0] != KindFull || len(applied) != 3 {
		t.Fatalf("applied %v %v, want the full %d then two deltas", applied, kinds, newest.Version)
	}
}

// When a delta is missing, the replica does not apply the deltas after
// it: it waits for the next full snapshot and continues from there.
func TestGapWaitsForTheNextFull(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	first := e.publish(true)
	f := e.follow(testKey)
	streamtest.WaitFor(t, 30*time.Second, "the first full", func() bool { return f.version() == first.Version })
	lost, err := e.tr.Capture() // a version whose delta never reaches the topic
	if err != nil {
		t.Fatal(err)
	}
	e.pub.prev = lost
	skipped := e.publish(false)
	e.publish(false)
	full := e.publish(true)
	after := e.publish(false)
	streamtest.WaitFor(t, 30*time.Second, "the delta after the next full", func() bool { return f.version() == after.Version })
	f.mu.Lock()
	applied := f.applied
	f.mu.Unlock()
	if !reflect.DeepEqual(applied, []int64{first.Version, full.Version, after.Version}) {
		t.Fatalf("applied %v; skipped delta %d (base %d)", applied, skipped.Version, skipped.BaseVersion)
	}
	if f.rejected("gap") == 0 {
		t.Fatal("the gap was not counted")
	}
	sameModel(t, f, e.pub.prev)
}

// Control records reach the handler; unsigned ones, ones of another
// model, ones older than the max age (injected clock) and a replayed copy
// of an obeyed one are rejected and counted.
func TestControlRecords(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	now := time.Unix(1_800_000_000, 0)
	w := e.watchControls(now)
	publish := func(key []byte, c Control) {
		t.Helper()
		if err := PublishControl(context.Background(), e.copts, topic, key, c); err != nil {
			t.Fatal(err)
		}
	}
	publish(nil, Control{Action: ActionRollback, Version: 7, ModelID: "test", Created: now})
	publish(testKey, Control{Action: ActionRollback, Version: 5, ModelID: "other", Created: now})
	publish(testKey, Control{Action: ActionRollback, Version: 4, ModelID: "test", Created: now.Add(-2 * time.Hour)})
	publish(testKey, Control{Action: ActionRollback, Version: 3, ModelID: "test", Created: now.Add(-time.Minute)})
	publish(testKey, Control{Action: ActionResume, ModelID: "test", Created: now})
	if err := PublishControl(context.Background(), e.copts, topic, testKey, Control{Action: "explode", Created: now}); err == nil || !strings.Contains(err.Error(), "unknown control action") {
		t.Fatalf("bad action: got %v", err)
	}
	replayRecords(t, e.copts, func(r *kgo.Record) bool { return strings.Contains(string(r.Value), `"version":3`) })
	streamtest.WaitFor(t, 30*time.Second, "the replayed control record to be refused", func() bool { return w.rejected("replay") == 2 })
	if got := w.obeyed(); len(got) != 2 || got[0].Version != 3 || got[1].Action != ActionResume || w.rejected("unauthenticated") != 1 || w.rejected("model_id") != 1 {
		t.Fatalf("got %+v; rejected: unauthenticated %d, model_id %d", got, w.rejected("unauthenticated"), w.rejected("model_id"))
	}
}

// controlWatch is a subscriber of model "test" at an injected clock that
// keeps the control records it obeys.
type controlWatch struct {
	mu  sync.Mutex
	got []Control
	set *metrics.Set
}

// watchControls subscribes to the topic with the test key and a one-hour
// control max age at clock now, until the test ends.
func (e *env) watchControls(now time.Time) *controlWatch {
	w := &controlWatch{set: metrics.NewSet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Subscribe(ctx, SubscriberOptions{Client: e.copts, Topic: topic, Key: testKey, ModelID: "test", ControlMaxAge: time.Hour,
			Now: func() time.Time { return now }, Metrics: w.set, Logf: e.t.Logf},
			Handler{Apply: func(*Update) error { return nil }, Control: func(c Control) { w.mu.Lock(); w.got = append(w.got, c); w.mu.Unlock() }})
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	return w
}

// obeyed returns the control records obeyed so far.
func (w *controlWatch) obeyed() []Control {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

func (w *controlWatch) rejected(reason string) uint64 {
	return w.set.GetOrCreateCounter(`unirec_snapshot_rejected_total{reason="` + reason + `"}`).Get()
}

// replayRecords copies, as an attacker with write access to the topic
// but without the key could, every record of the topic that keep selects
// (value and headers, signature included) to its end.
func replayRecords(t *testing.T, copts stream.ClientOptions, keep func(*kgo.Record) bool) {
	t.Helper()
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var copies []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		f := cl.PollFetches(ctx)
		cancel()
		if f.Empty() {
			break
		}
		f.EachRecord(func(r *kgo.Record) {
			if keep(r) {
				copies = append(copies, &kgo.Record{Topic: topic, Partition: 0, Key: r.Key, Value: r.Value, Headers: r.Headers})
			}
		})
	}
	if len(copies) == 0 {
		t.Fatal("nothing to replay")
	}
	if err := cl.ProduceSync(context.Background(), copies...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A replayed copy of an old signed full snapshot (every chunk and its
// manifest, re-produced as they were) is refused as a replay and counted;
// the chain and the served version are unchanged, and the next delta of
// the real chain still applies.
func TestReplayedSnapshotIsRefused(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	first := e.publish(true)
	f := e.follow(testKey)
	second := e.publish(false)
	streamtest.WaitFor(t, 30*time.Second, "the delta", func() bool { return f.version() == second.Version })
	replayRecords(t, e.copts, func(r *kgo.Record) bool { return r.Offset <= first.FullOffset+int64(first.Chunks) })
	third := e.publish(false)
	streamtest.WaitFor(t, 30*time.Second, "the next delta", func() bool { return f.version() == third.Version })
	f.mu.Lock()
	applied := f.applied
	f.mu.Unlock()
	if !reflect.DeepEqual(applied, []int64{first.Version, second.Version, third.Version}) || f.rejected("replay") != 1 {
		t.Fatalf("applied %v, %d replays refused; want %d, %d, %d and one replay refused",
			applied, f.rejected("replay"), first.Version, second.Version, third.Version)
	}
	sameModel(t, f, e.pub.prev)
}

// A full snapshot that falls due goes out after the delta of the same
// version, so the delta is never held back by the full's encoding: a
// replica following the chain applies the delta and skips the full
// (counted, not rejected); a replica starting cold begins at the full.
func TestDueFullFollowsItsDelta(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	now := time.Unix(1_800_000_000, 0)
	pub, err := NewPublisher(PublisherOptions{Client: e.copts, Topic: topic, TransactionalID: "due", FullInterval: time.Hour, Key: testKey,
		Now: func() time.Time { return now }}, e.tr)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var written []*Manifest
	pub.opts.OnPublish = func(m *Manifest, _ time.Duration) { written = append(written, m) }
	e.train(300)
	first, err := pub.Publish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f := e.follow(testKey)
	streamtest.WaitFor(t, 30*time.Second, "the first full", func() bool { return f.version() == first.Version })
	e.train(5)
	now = now.Add(time.Hour)
	full, err := pub.Publish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 3 || written[1].Kind != KindDelta || full.Kind != KindFull || full != written[2] || full.Version != written[1].Version {
		t.Fatalf("published %d snapshots, the second call returned a %s of version %d; want a full, then a delta and a full of one version", len(written), full.Kind, full.Version)
	}
	streamtest.WaitFor(t, 30*time.Second, "the full skipped", func() bool {
		return f.set.GetOrCreateCounter("unirec_snapshot_full_skipped_total").Get() == 1
	})
	if kinds, _ := f.seen(); !slices.Equal(kinds, []string{KindFull, KindDelta}) || f.rejected("replay") != 0 {
		t.Fatalf("the following replica applied %v and refused %d replays; want the first full and the delta, none refused", kinds, f.rejected("replay"))
	}
	sameModel(t, f, pub.prev)
	cold := e.follow(testKey)
	streamtest.WaitFor(t, 30*time.Second, "the cold replica", func() bool { return cold.version() == full.Version })
	if kinds, applied := cold.seen(); !slices.Equal(kinds, []string{KindFull}) {
		t.Fatalf("the cold replica applied %v %v; want only the full of version %d", kinds, applied, full.Version)
	}
	sameModel(t, cold, pub.prev)
}

// A full snapshot is published when full_interval has passed (injected
// clock) or when the deltas since the last full add up to more bytes than
// it; otherwise deltas.
func TestWhenAFullIsPublished(t *testing.T) {
	e := newEnv(t, nil, EncodingFloat32)
	now := time.Unix(1_800_000_000, 0)
	pub, err := NewPublisher(PublisherOptions{Client: e.copts, Topic: topic, TransactionalID: "clocked", FullInterval: time.Hour,
		Now: func() time.Time { return now }}, e.tr)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	publish := func(examples int) *Manifest {
		t.Helper()
		e.train(examples)
		m, err := pub.Publish(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	full := publish(300)
	if full.Kind != KindFull {
		t.Fatalf("first snapshot is a %s", full.Kind)
	}
	now = now.Add(59 * time.Minute)
	if m := publish(1); m.Kind != KindDelta {
		t.Fatalf("before full_interval: %s", m.Kind)
	}
	now = now.Add(time.Minute)
	full = publish(1)
	if full.Kind != KindFull {
		t.Fatalf("after full_interval: %s", full.Kind)
	}
	sum, last := 0, 0
	for deltas := 0; ; deltas++ {
		m := publish(40)
		if m.Kind == KindFull {
			if sum < full.Bytes || sum-last >= full.Bytes {
				t.Fatalf("full after %d deltas of %d bytes (the last %d); the full before was %d bytes", deltas, sum, last, full.Bytes)
			}
			break
		}
		sum, last = sum+m.Bytes, m.Bytes
		if deltas > 1000 {
			t.Fatal("no full snapshot after 1000 deltas")
		}
	}
}

// A flood of unauthenticated chunks (valid CRCs, one version claiming
// 1,000 chunks) is buffered only up to MaxBytes: the chunks beyond are
// refused and counted as too_large, and the next real snapshot applies.
func TestChunkFloodIsBounded(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	set := metrics.NewSet()
	var mu sync.Mutex
	var applied []int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Subscribe(ctx, SubscriberOptions{Client: e.copts, Topic: topic, Key: testKey, MaxBytes: 64 << 10, Metrics: set},
			Handler{Apply: func(u *Update) error {
				mu.Lock()
				applied = append(applied, u.Manifest.Version)
				mu.Unlock()
				return nil
			}})
	}()
	defer func() { cancel(); <-done }()
	cl, err := kgo.NewClient(append(e.copts.Opts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	chunks := encodeChunks(99, make([]byte, 1000*4096), 4096)
	var flood []*kgo.Record
	for i, c := range chunks[:40] {
		flood = append(flood, &kgo.Record{Topic: topic, Key: []byte("chunk/" + strconv.Itoa(i)), Value: c})
	}
	if err := cl.ProduceSync(context.Background(), flood...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	good := e.publish(true)
	streamtest.WaitFor(t, 30*time.Second, "the real snapshot", func() bool { mu.Lock(); defer mu.Unlock(); return len(applied) == 1 })
	if n := set.GetOrCreateCounter(`unirec_snapshot_rejected_total{reason="too_large"}`).Get(); n != 24 || applied[0] != good.Version {
		t.Fatalf("%d chunks refused as too large, want 24 (16 x 4 KiB fit in 64 KiB); applied %v", n, applied)
	}
}
