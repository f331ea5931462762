package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

const routedPartitions = 4

// routed is an embedded broker whose events topic has four partitions, with
// an ingest loop that routes events to the partition of their key; the
// loop can be stopped mid-stream and started again (a restart).
type routed struct {
	client stream.ClientOptions
	topics stream.Topics
	set    *metrics.Set
	cl     *kgo.Client // produces to the partition each record names
	stop   func()
	now    time.Time
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	b, err := stream.StartBroker(stream.BrokerOptions{Partitions: routedPartitions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	r := &routed{client: stream.Plaintext(b.Addr()), topics: stream.DefaultTopics(), now: t0.Add(time.Second)}
	r.cl, err = kgo.NewClient(append(r.client.Opts(), kgo.DefaultProduceTopic(r.topics.Events),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.cl.Close)
	specs := append(r.topics.Layout(routedPartitions),
		stream.TopicSpec{Name: "changelog", Partitions: routedPartitions, Configs: map[string]string{"cleanup.policy": "compact"}})
	if err := stream.EnsureTopics(context.Background(), r.cl, specs); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	t.Cleanup(func() { r.stop() })
	return r
}

// start runs a fresh Ingester (fresh metrics) in the loop, consuming the
// events and repartition topics co-partitioned, as the pipeline does.
func (r *routed) start(t *testing.T) {
	t.Helper()
	n, err := stream.CoPartitions(context.Background(), r.client, r.topics.Events, r.topics.Repartition, "changelog")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	r.set = metrics.NewSet()
	now := r.now
	ing := ingest.New(ingest.Options{Registry: reg, Topics: r.topics, Changelog: "changelog", Client: r.client, Partitions: n,
		AllowedLateness: 5 * time.Second, MaxEventBytes: 2048, Metrics: r.set, Now: func() time.Time { return now }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- stream.RunTxLoop(ctx, stream.TxLoopOptions{Client: r.client, Group: "ingest", TransactionalID: "ingest-test",
			Topic: r.topics.Events, CoTopics: []string{r.topics.Repartition}, Tick: 50 * time.Millisecond, Logf: t.Logf}, ing)
	}()
	r.stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest loop: %v", err)
		}
		r.stop = func() {}
	}
}

// keyed is the partition Kafka's default partitioner (murmur2) gives key:
// the contract for keyed producers.
func keyed(key string) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("unirec.events")
	return int32(p.Partition(&kgo.Record{Key: []byte(key)}, routedPartitions))
}

// produce writes values to partition p of the events topic.
func (r *routed) produce(t *testing.T, p int32, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := r.cl.ProduceSync(context.Background(), &kgo.Record{Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// drain waits until the loop has committed every events record and every
// routed record, then returns every example it ever emitted: a well-keyed
// sentinel event produced after that is the last example.
func (r *routed) drain(t *testing.T) []stream.Example {
	t.Helper()
	adm := kadm.NewClient(r.cl)
	ctx := context.Background()
	streamtest.WaitFor(t, 60*time.Second, "ingest to commit every events and routed record", func() bool {
		ends, err := adm.ListEndOffsets(ctx, r.topics.Events, r.topics.Repartition)
		if err != nil {
			return false
		}
		committed, err := adm.FetchOffsets(ctx, "ingest")
		if err != nil {
			return false
		}
		caught := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(o.Topic, o.Partition)
			end := o.Offset
			if o.Topic == r.topics.Repartition && end > 0 {
				end-- // the marker of the last (committed) transaction
			}
			caught = caught && (end == 0 || ok && c.At >= end)
		})
		return caught
	})
	r.produce(t, keyed("u-fin"), event("fin", t0, "notifications", "play", "", "m-1", `"user_id":"u-fin"`))
	cl, err := kgo.NewClient(append(r.client.Opts(), kgo.ConsumeTopics(r.topics.Examples),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var out []stream.Example
	for {
		f := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatalf("no sentinel example after %d examples", len(out))
		}
		for _, rec := range f.Records() {
			var ex stream.Example
			if err := stream.DecodeExample(rec.Value, &ex); err != nil {
				t.Fatal(err)
			}
			if ex.EventID == "fin" {
				return out
			}
			out = append(out, ex)
		}
	}
}

const (
	impressionCtx = `"user_id":"u1","query":"space","device":"tv"`
	clickCtx      = `"user_id":"u1","query":"space"`
)

// Events on partitions other than their key's (unkeyed, keyed by something
// else) are joined and deduped as if well keyed: an impression and its
// click on two other partitions are one positive with the impression's
// context, the click's duplicate on a third partition is dropped, and a
// well-keyed event takes the direct path.
func TestAnyProducerIsJoinedAndDeduped(t *testing.T) {
	r := newRouted(t)
	h := keyed("r1")
	other := func(i int32) int32 { return (h + i) % routedPartitions }
	r.produce(t, other(1), event("i1", t0, "search", "impression", "r1", "m-1", impressionCtx))
	streamtest.WaitFor(t, 60*time.Second, "the impression pending", func() bool {
		return metricValue(r.set, "unirec_ingest_pending_impressions") == 1
	})
	r.produce(t, other(2), event("c1", t0, "search", "click", "r1", "m-1", clickCtx))
	r.produce(t, other(3), event("c1", t0, "search", "click", "r1", "m-1", clickCtx)) // duplicate, another partition
	r.produce(t, h, event("c2", t0, "search", "click", "r1", "m-2", clickCtx))        // well keyed: direct
	// unkeyed: kcat's default, franz-go's sticky partitioner
	uk, err := kgo.NewClient(append(r.client.Opts(), kgo.DefaultProduceTopic(r.topics.Events))...)
	if err != nil {
		t.Fatal(err)
	}
	defer uk.Close()
	for i := range 4 {
		v := event(fmt.Sprint("u", i), t0, "search", "click", fmt.Sprint("r-u", i), "m-3", clickCtx)
		if err := uk.ProduceSync(context.Background(), &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][]stream.Example{}
	for _, ex := range r.drain(t) {
		got[ex.EventID] = append(got[ex.EventID], ex)
	}
	if len(got) != 6 {
		t.Errorf("examples of events %v, want c1, c2, u0..u3", keys(got))
	}
	for id, exs := range got {
		if len(exs) != 1 {
			t.Errorf("event %s: %d examples, want 1", id, len(exs))
		}
	}
	if exs := got["c1"]; len(exs) == 0 || exs[0].ContextValue("device") != "tv" || exs[0].Label != 1 {
		t.Errorf("c1 was not joined with its impression on another partition: %+v", exs)
	}
	if n := metricValue(r.set, `unirec_ingest_events_total{outcome="repartitioned"}`); n < 3 {
		t.Errorf("repartitioned %v events, want at least 3 (i1, c1 twice)", n)
	}
	if n := metricValue(r.set, `unirec_ingest_events_total{outcome="duplicate"}`); n != 1 {
		t.Errorf("duplicates %v, want 1", n)
	}
}

// Routed ingest is exactly once across a restart mid-stream: every click,
// each on another partition than its impression and both off their key's,
// is one joined positive, none lost, none twice, and a click repeated on a
// third partition after the restart is a duplicate. (Events of one request
// on different partitions are read in no set order, so the impressions are
// in before their clicks are sent: a click read first is labelled alone,
// as it is for a keyed producer that sends it first.)
func TestRoutedIngestIsExactlyOnceAcrossRestart(t *testing.T) {
	r := newRouted(t)
	const requests = 80
	click := func(i int, shift int32) {
		req := fmt.Sprint("req-", i)
		r.produce(t, (keyed(req)+shift)%routedPartitions, event(fmt.Sprint("c", i), t0, "search", "click", req, "m-1", clickCtx))
	}
	for i := range requests {
		req := fmt.Sprint("req-", i)
		r.produce(t, (keyed(req)+1+int32(i%3))%routedPartitions, event(fmt.Sprint("i", i), t0, "search", "impression", req, "m-1", impressionCtx))
	}
	streamtest.WaitFor(t, 60*time.Second, "every impression pending", func() bool {
		return metricValue(r.set, "unirec_ingest_pending_impressions") == requests
	})
	for i := range requests / 2 {
		click(i, int32(i%2))
	}
	streamtest.WaitFor(t, 60*time.Second, "some examples before the restart", func() bool {
		return metricValue(r.set, `unirec_ingest_events_total{outcome="example"}`) >= 5
	})
	r.stop()
	for i := requests / 2; i < requests; i++ { // while no ingest runs
		click(i, int32(i%2))
	}
	r.start(t)
	for i := 0; i < requests; i += 10 {
		click(i, 3) // a duplicate, on a third partition
	}
	got := map[string]int{}
	for _, ex := range r.drain(t) {
		got[ex.EventID]++
		if ex.ContextValue("device") != "tv" {
			t.Errorf("%s: not joined with its impression: %+v", ex.EventID, ex)
		}
	}
	for i := range requests {
		if n := got[fmt.Sprint("c", i)]; n != 1 {
			t.Errorf("click c%d: %d examples, want 1", i, n)
		}
	}
	if len(got) != requests {
		t.Errorf("%d distinct examples, want %d", len(got), requests)
	}
	if n := metricValue(r.set, `unirec_ingest_events_total{outcome="duplicate"}`); n != requests/10 {
		t.Errorf("duplicates after the restart %v, want %d", n, requests/10)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
