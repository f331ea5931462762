package ingest_test

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// stage is the ingest stage driven batch by batch (no transaction loop) on
// a real embedded broker, which holds its changelog, under a clock the
// test moves.
type stage struct {
	*ingest.Ingester
	t      *testing.T
	client stream.ClientOptions
	topics stream.Topics
	set    *metrics.Set
	now    time.Time
	offset int64
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// newStage returns a stage on broker b (a fresh one when nil) whose clock
// reads t0, with partitions 0 and 1 restored from the changelog.
func newStage(t *testing.T, b *stream.Broker, opts ...func(*ingest.Options)) *stage {
	t.Helper()
	if b == nil {
		var err error
		if b, err = stream.StartBroker(stream.BrokerOptions{Partitions: 2}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
	}
	s := &stage{t: t, client: stream.Plaintext(b.Addr()), topics: stream.DefaultTopics(), set: metrics.NewSet(), now: t0}
	cl, err := kgo.NewClient(s.client.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	specs := append(s.topics.Layout(2), stream.TopicSpec{Name: "changelog", Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}})
	if err := stream.EnsureTopics(context.Background(), cl, specs); err != nil {
		t.Fatal(err)
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	o := ingest.Options{Registry: reg, Topics: s.topics, Changelog: "changelog", Client: s.client, AllowedLateness: 5 * time.Second,
		MaxEventBytes: 2048, Metrics: s.set, Now: func() time.Time { return s.now }}
	for _, f := range opts {
		f(&o)
	}
	s.Ingester = ingest.New(o)
	if err := s.Restore(context.Background(), []int32{0, 1}); err != nil {
		t.Fatal(err)
	}
	return s
}

// batch processes events (partition, JSON value) as one committed batch
// and returns its outputs.
func (s *stage) batch(events ...any) outputs {
	s.t.Helper()
	var recs []*kgo.Record
	for i := 0; i < len(events); i += 2 {
		s.offset++
		recs = append(recs, &kgo.Record{Topic: s.topics.Events, Partition: events[i].(int32), Offset: s.offset, Value: []byte(events[i+1].(string))})
	}
	var out outputs
	if err := s.Process(context.Background(), recs, func(r *kgo.Record) { out = append(out, r) }); err != nil {
		s.t.Fatal(err)
	}
	s.Commit()
	return out
}

// outputs are the records of one batch.
type outputs []*kgo.Record

// examples returns the examples by event id.
func (o outputs) examples(t *testing.T, topics stream.Topics) map[string]stream.Example {
	t.Helper()
	got := map[string]stream.Example{}
	for _, r := range o {
		if r.Topic != topics.Examples {
			continue
		}
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		got[ex.EventID] = ex
	}
	return got
}

// deadLetters returns the reason of each dead letter by its value.
func (o outputs) deadLetters(topics stream.Topics) map[string]string {
	got := map[string]string{}
	for _, r := range o {
		if r.Topic == topics.DeadLetters {
			got[string(r.Value)] = stream.Header(r, stream.HeaderReason)
		}
	}
	return got
}

// watermark returns the watermark a batch wrote to the changelog of
// partition p, and whether it wrote one.
func (o outputs) watermark(p int32) (time.Time, bool) {
	for _, r := range o {
		if r.Topic == "changelog" && r.Partition == p && string(r.Key) == "w" {
			ms, _ := binary.Varint(r.Value)
			return time.UnixMilli(ms).UTC(), true
		}
	}
	return time.Time{}, false
}

// persist writes a batch's changelog records to the broker, as the
// transaction of that batch would.
func (s *stage) persist(o outputs) {
	s.t.Helper()
	cl, err := kgo.NewClient(append(s.client.Opts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range o {
		if r.Topic == "changelog" {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: r.Topic, Partition: r.Partition, Key: r.Key, Value: r.Value}).FirstErr(); err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

const searchCtx = `"user_id":"u1","query":"space"`

// An event dated beyond the wall clock plus max_future_skew is dead-lettered
// as "future" and does not move the watermark, so the present events after
// it are still learned (one event dated 2099 used to make every later event
// of its partition late).
func TestFutureEventsAreDeadLettered(t *testing.T) {
	s := newStage(t, nil, func(o *ingest.Options) { o.MaxFutureSkew = time.Minute })
	future := event("f1", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC), "notifications", "play", "", "m-1", `"user_id":"u1"`)
	justOver := event("f2", t0.Add(time.Minute+time.Millisecond), "notifications", "play", "", "m-1", `"user_id":"u1"`)
	out := s.batch(
		int32(0), future,
		int32(0), justOver,
		int32(0), event("ok1", t0, "notifications", "play", "", "m-1", `"user_id":"u1"`),
		int32(0), event("edge", t0.Add(time.Minute), "notifications", "play", "", "m-2", `"user_id":"u1"`),
	)
	dl := out.deadLetters(s.topics)
	if dl[future] != ingest.ReasonFuture || dl[justOver] != ingest.ReasonFuture || len(dl) != 2 {
		t.Errorf("dead letters %v, want the two events beyond the skew as %q", dl, ingest.ReasonFuture)
	}
	exs := out.examples(t, s.topics)
	for _, id := range []string{"ok1", "edge"} {
		if _, ok := exs[id]; !ok {
			t.Errorf("no example of %s; got %v, dead letters %v", id, exs, dl)
		}
	}
	if w, ok := out.watermark(0); !ok || w.After(t0.Add(time.Minute)) {
		t.Errorf("watermark %s (written %v) passed the wall clock plus the skew", w, ok)
	}
	if n := metricValue(s.set, `unirec_ingest_dead_letters_total{reason="future"}`); n != 2 {
		t.Errorf("future dead letters counted %v, want 2", n)
	}
}

// State written before event times were bounded (here by a stage with a
// skew of a century) may hold a watermark in 2099 and an impression of
// 2099: a restart clamps the watermark to wall clock plus skew and drops the
// impression, so present events are learned again once the clock passes it.
func TestRestoredFutureWatermarkIsClamped(t *testing.T) {
	b, err := stream.StartBroker(stream.BrokerOptions{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	y2099 := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	old := newStage(t, b, func(o *ingest.Options) { o.MaxFutureSkew = 100 * 365 * 24 * time.Hour })
	out := old.batch(int32(0), event("i2099", y2099, "search", "impression", "r", "m-1", searchCtx))
	if w, _ := out.watermark(0); !w.Equal(y2099) {
		t.Fatalf("setup: the unbounded stage's watermark is %s, want %s", w, y2099)
	}
	old.persist(out)

	s := newStage(t, b, func(o *ingest.Options) { o.MaxFutureSkew = 5 * time.Minute })
	s.now = t0.Add(10 * time.Minute)
	out = s.batch(int32(0), event("now", s.now, "notifications", "play", "", "m-2", `"user_id":"u1"`))
	if _, ok := out.examples(t, s.topics)["now"]; !ok {
		t.Fatalf("a present event after the restart was not learned: dead letters %v", out.deadLetters(s.topics))
	}
	if w, ok := out.watermark(0); !ok || !w.Equal(s.now) {
		t.Errorf("watermark after the restart %s (written %v), want %s", w, ok, s.now)
	}
	tombstone := false
	for _, r := range out {
		tombstone = tombstone || (r.Topic == "changelog" && r.Value == nil && string(r.Key) == "pr\x00m-1")
	}
	if !tombstone {
		t.Errorf("the restored impression of 2099 was not dropped from the changelog")
	}
	if n := metricValue(s.set, "unirec_ingest_pending_impressions"); n != 0 {
		t.Errorf("%v impressions pending, want the 2099 one dropped", n)
	}
}

// A late event is dead-lettered without its id being remembered, so once
// fixed (time moved forward, as the README says) and replayed it is
// learned, not dropped as a duplicate; an accepted id still catches its
// duplicates.
func TestLateEventFixedAndReplayedIsLearned(t *testing.T) {
	s := newStage(t, nil)
	play := func(id string, at time.Time) string {
		return event(id, at, "notifications", "play", "", "m-1", `"user_id":"u1"`)
	}
	late := play("late1", t0)
	out := s.batch(int32(0), play("a", t0.Add(time.Minute)), int32(0), late)
	if dl := out.deadLetters(s.topics); dl[late] != ingest.ReasonLate {
		t.Fatalf("setup: dead letters %v, want late1 late", dl)
	}
	out = s.batch(int32(0), play("late1", t0.Add(time.Minute)), int32(0), play("late1", t0.Add(time.Minute)))
	if _, ok := out.examples(t, s.topics)["late1"]; !ok {
		t.Errorf("the fixed, replayed late event was not learned; dead letters %v", out.deadLetters(s.topics))
	}
	if n := metricValue(s.set, `unirec_ingest_events_total{outcome="duplicate"}`); n != 1 {
		t.Errorf("%v duplicates, want 1 (the second replay)", n)
	}
}

// A quiet partition closes its windows by wall clock even while another
// partition is busy, so no batch is ever empty: the impression becomes a
// negative once its window plus the allowed lateness passed since it
// arrived, and not before.
func TestQuietPartitionClosesWindowsBesideBusyOnes(t *testing.T) {
	s := newStage(t, nil)
	busy := func(id string) string {
		return event(id, s.now, "notifications", "play", "", "m-9", `"user_id":"u2"`)
	}
	s.batch(int32(0), event("i1", t0, "search", "impression", "r1", "m-1", searchCtx), int32(1), busy("b0"))
	s.now = t0.Add(30 * time.Second) // the search window; lateness (5s) still to go
	if out := s.batch(int32(1), busy("b1")); len(out.examples(t, s.topics)) != 1 {
		t.Fatalf("the impression closed before its window plus lateness: %v", out.examples(t, s.topics))
	}
	s.now = t0.Add(35 * time.Second)
	out := s.batch(int32(1), busy("b2"))
	ex, ok := out.examples(t, s.topics)["i1"]
	if !ok || ex.Label != 0 {
		t.Fatalf("the quiet partition's impression did not close beside a busy partition: %v", out.examples(t, s.topics))
	}
	if n := metricValue(s.set, "unirec_ingest_pending_impressions"); n != 0 {
		t.Errorf("%v impressions pending, want 0", n)
	}
}
