package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// pipeline is an embedded broker with the ingest stage running on it.
type pipeline struct {
	broker *stream.Broker
	client stream.ClientOptions
	topics stream.Topics
	set    *metrics.Set
	cl     *kgo.Client
}

// startIngest starts the ingest stage on a fresh embedded broker; opts
// adjust its options (clock, canvases...).
func startIngest(t *testing.T, opts ...func(*ingest.Options)) *pipeline {
	t.Helper()
	b, err := stream.StartBroker(stream.BrokerOptions{Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	p := &pipeline{broker: b, client: stream.Plaintext(b.Addr()), topics: stream.DefaultTopics(), set: metrics.NewSet()}
	p.cl, err = kgo.NewClient(append(p.client.Opts(), kgo.DefaultProduceTopic(p.topics.Events))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cl.Close)
	specs := append(p.topics.Layout(2), stream.TopicSpec{Name: "changelog", Partitions: 2, Configs: map[string]string{"cleanup.policy": "compact"}})
	if err := stream.EnsureTopics(context.Background(), p.cl, specs); err != nil {
		t.Fatal(err)
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	o := ingest.Options{Registry: reg, Topics: p.topics, Changelog: "changelog", Client: p.client,
		AllowedLateness: 5 * time.Second, MaxEventBytes: 2048, Metrics: p.set}
	for _, f := range opts {
		f(&o)
	}
	ing := ingest.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stream.RunTxLoop(ctx, stream.TxLoopOptions{Client: p.client, Group: "ingest", TransactionalID: "ingest-test",
			Topic: p.topics.Events, Tick: 50 * time.Millisecond}, ing)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest loop: %v", err)
		}
	})
	return p
}

func (p *pipeline) produce(t *testing.T, key string, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := p.cl.ProduceSync(context.Background(), &kgo.Record{Key: []byte(key), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// readCommitted returns the committed records of topic once there are n.
func (p *pipeline) readCommitted(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(append(p.client.Opts(), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(out) < n {
		f := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: got %d records, want %d", topic, len(out), n)
		}
		out = append(out, f.Records()...)
	}
	return out
}

func event(id string, at time.Time, canvas, action, req, item, ctx string) string {
	return fmt.Sprintf(`{"event_id":%q,"time":%q,"canvas":%q,"action":%q,"request_id":%q,"item_id":%q,"context":{%s}}`,
		id, at.UTC().Format(time.RFC3339Nano), canvas, action, req, item, ctx)
}

// Bad events land in the dead-letter topic with their reason and original
// bytes, and good events around them still become examples.
func TestBadEventsAreDeadLettered(t *testing.T) {
	p := startIngest(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	bad := map[string]string{
		`{"event_id": "b1", "canvas": `:                                                                          ingest.ReasonBadJSON,
		event("b2", t0, "billboard", "click", "r", "m-1", `"user_id":"u"`):                                       ingest.ReasonUnknownCanvas,
		event("b3", t0, "notifications", "click", "r", "m-1", `"country":"US"`):                                  ingest.ReasonMissingField,
		event("b4", t0, "notifications", "teleport", "r", "m-1", `"user_id":"u"`):                                ingest.ReasonUnknownAction,
		`{"event_id":"b5","time":"yesterday","canvas":"search"}`:                                                 ingest.ReasonBadJSON,
		event("b6", t0, "search", "click", "r", "m-1", `"user_id":"u","query":"`+string(make([]byte, 3000))+`"`): ingest.ReasonTooLarge,
	}
	p.produce(t, "k", event("g1", t0, "notifications", "play", "", "m-1", `"user_id":"u1"`))
	for v := range bad {
		p.produce(t, "k", v)
	}
	p.produce(t, "k", event("g2", t0, "search", "click", "", "m-2", `"user_id":"u2","query":"space"`))
	dl := p.readCommitted(t, p.topics.DeadLetters, len(bad))
	for _, r := range dl {
		want, ok := bad[string(r.Value)]
		if !ok {
			t.Errorf("dead letter with unexpected value %q", r.Value)
			continue
		}
		if got := stream.Header(r, stream.HeaderReason); got != want {
			t.Errorf("%q: reason %q, want %q (detail %q)", r.Value, got, want, stream.Header(r, stream.HeaderDetail))
		}
	}
	exs := p.readCommitted(t, p.topics.Examples, 2)
	var ex stream.Example
	for _, r := range exs {
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Label != 1 || (ex.EventID != "g1" && ex.EventID != "g2") {
			t.Errorf("unexpected example %+v", ex)
		}
	}
}

// An impression joined with a later click is one positive; an impression
// without engagement becomes a negative once the watermark passes its
// window; a duplicate is dropped once and counted. The accounting balances.
func TestJoinInEventTime(t *testing.T) {
	p := startIngest(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ctx := `"user_id":"u1","query":"space"`
	p.produce(t, "r1",
		event("i1", t0, "search", "impression", "r1", "m-1", ctx),
		event("i2", t0, "search", "impression", "r1", "m-2", ctx),
		event("c1", t0.Add(2*time.Second), "search", "click", "r1", "m-1", ctx),
		event("c1", t0.Add(2*time.Second), "search", "click", "r1", "m-1", ctx), // duplicate
		event("p1", t0.Add(3*time.Second), "search", "play", "r1", "m-1", ctx),  // tops up to play's weight
		// advances the watermark past window (30s) + lateness (5s)
		event("late-clock", t0.Add(40*time.Second), "search", "click", "r2", "m-9", ctx),
	)
	recs := p.readCommitted(t, p.topics.Examples, 4)
	got := map[string]stream.Example{}
	for _, r := range recs {
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		got[ex.EventID] = ex
	}
	check := func(id string, label, weight float32) {
		t.Helper()
		ex, ok := got[id]
		if !ok {
			t.Fatalf("no example from event %s; got %v", id, got)
		}
		if ex.Label != label || ex.Weight != weight {
			t.Errorf("%s: label %v weight %v, want %v %v", id, ex.Label, ex.Weight, label, weight)
		}
	}
	check("c1", 1, 1) // click weight
	check("p1", 1, 1) // play (2) minus the click already emitted
	check("i2", 0, 1) // unengaged impression
	check("late-clock", 1, 1)
	if ex := got["c1"]; ex.ContextValue("query") != "space" || ex.RequestID != "r1" {
		t.Errorf("joined example lost the impression's context: %+v", ex)
	}
	waitForMetric(t, p.set, `unirec_ingest_events_consumed_total`, 6)
	counts := map[string]float64{}
	for _, o := range []string{"example", "joined", "duplicate", "sampled_out", "dead_letter"} {
		counts[o] = metricValue(p.set, fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o))
	}
	pending := metricValue(p.set, "unirec_ingest_pending_impressions")
	sum := counts["example"] + counts["joined"] + counts["duplicate"] + counts["sampled_out"] + counts["dead_letter"] + pending
	if sum != 6 || counts["duplicate"] != 1 {
		t.Errorf("accounting does not balance: consumed 6, outcomes %v, pending %v", counts, pending)
	}
}
