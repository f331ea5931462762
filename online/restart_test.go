package online_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// A trainer stopped mid-stream and restarted on the same Pebble directory
// applies every example exactly once: offsets are committed with the
// parameters they produced.
func TestRestartResumesExactly(t *testing.T) {
	copts, cl := examplesTopic(t)
	ctx := context.Background()
	const n = 20000
	produce := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			ex := stream.Example{Task: "search", ItemID: "m-" + string(rune('a'+i%20)), Label: float32(i % 2), Weight: 1,
				EventTime: int64(i), Context: []stream.Field{{Name: "user_id", Value: "u-" + string(rune('a'+i%7))}}}
			recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &ex)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	open := func() *online.Trainer {
		tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: dir, Client: copts,
			Topic: "examples", CommitInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	run := func(tr *online.Trainer, until func() bool) {
		runUntil(t, tr, until)
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, n/2)
	first := open()
	run(first, func() bool { return first.Applied() >= n/4 })
	stoppedAt := first.Applied()
	if stoppedAt == 0 || stoppedAt >= n {
		t.Fatalf("the first run should stop mid-stream, applied %d", stoppedAt)
	}
	produce(n/2, n)
	second := open()
	if second.Applied() != stoppedAt {
		t.Fatalf("after restart the store says %d applied, the first run stopped at %d", second.Applied(), stoppedAt)
	}
	run(second, func() bool { return second.Applied() >= n })
	if got := second.Applied(); got != n {
		t.Fatalf("examples applied %d, produced %d", got, n)
	}
}

// An undecodable record is skipped and its offset still advances: the
// trainer neither stalls on it nor reads it again after a restart.
func TestUndecodableExampleIsSkipped(t *testing.T) {
	copts, cl := examplesTopic(t)
	ctx := context.Background()
	good := stream.Example{Task: "search", ItemID: "m-1", Label: 1, Weight: 1, EventTime: 1,
		Context: []stream.Field{{Name: "user_id", Value: "u-1"}}}
	recs := []*kgo.Record{{Value: stream.AppendExample(nil, &good)}, {Value: []byte("not an example")}, {Value: stream.AppendExample(nil, &good)}}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: t.TempDir(), Client: copts,
		Topic: "examples", CommitInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var c *model.Capture
	runUntil(t, tr, func() bool {
		if c, err = tr.Capture(); err != nil {
			t.Fatal(err)
		}
		return c.Offsets[0] == 3
	})
	if c.Offsets[0] != 3 || c.Applied != 2 {
		t.Fatalf("offset %d, applied %d: want 3 and 2 (the bad record skipped)", c.Offsets[0], c.Applied)
	}
}

// A stored offset the examples topic no longer has (records deleted below
// it while the trainer was down) fails Run with an error naming the topic,
// partition, offset and the fix, instead of silently relearning the topic
// from its start; reset_offsets earliest or latest continues as asked.
func TestOffsetOutOfRangeFailsLoudly(t *testing.T) {
	copts, cl := examplesTopic(t)
	ctx := context.Background()
	produce := func(n int) {
		var recs []*kgo.Record
		for i := range n {
			ex := stream.Example{Task: "search", ItemID: fmt.Sprint("m-", i%5), Label: float32(i % 2), Weight: 1, EventTime: int64(i),
				Context: []stream.Field{{Name: "user_id", Value: "u-1"}}}
			recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &ex)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	run := func(reset string, until func(*online.Trainer) bool) (int64, error) {
		t.Helper()
		tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: dir, Client: copts,
			Topic: "examples", CommitInterval: time.Millisecond, ResetOffsets: reset, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- tr.Run(rctx) }()
		var rerr error
		streamtest.WaitFor(t, 30*time.Second, "the trainer", func() bool {
			select {
			case rerr = <-done:
				return true
			default:
				return until(tr)
			}
		})
		cancel()
		if rerr == nil {
			rerr = <-done
		}
		applied := tr.Applied()
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		return applied, rerr
	}
	produce(30)
	if n, err := run("", func(tr *online.Trainer) bool { return tr.Applied() == 30 }); err != nil || n != 30 {
		t.Fatalf("first run: applied %d, %v", n, err)
	}
	produce(10)
	adm := kadm.NewClient(cl)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "examples", Partition: 0, At: 35})
	if res, err := adm.DeleteRecords(ctx, del); err != nil || res.Error() != nil {
		t.Fatalf("delete records: %v %v", err, res.Error())
	}
	_, err := run("", func(*online.Trainer) bool { return false })
	for _, want := range []string{"examples partition 0 up to offset 30", "offsets 35 to 40", "--reset-offsets=earliest", "--reset-offsets=latest"} {
		if !errors.Is(err, online.ErrOffsetOutOfRange) || !strings.Contains(err.Error(), want) {
			t.Fatalf("restart below the topic's start: got %v, want ErrOffsetOutOfRange saying %q", err, want)
		}
	}
	if n, err := run(online.ResetEarliest, func(tr *online.Trainer) bool { return tr.Offsets()[0] == 40 }); err != nil || n != 35 {
		t.Fatalf("reset earliest: applied %d (want 30 + the 5 records left), %v", n, err)
	}
}

// oneCore returns run(0) with GOMAXPROCS 1: the log stage's chunks are
// then all done by the learner, where on more cores prepare does some.
func oneCore(run func(maxRows int) *model.Capture) *model.Capture {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	return run(0)
}

// learnTopic opens a trainer with opts in a fresh directory, runs it
// until it has applied n examples, and returns its model.
func learnTopic(t *testing.T, opts online.TrainerOptions, n int) *model.Capture {
	t.Helper()
	opts.Dir = t.TempDir()
	tr, err := online.OpenTrainer(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	runUntil(t, tr, func() bool { return tr.Applied() >= int64(n) })
	c, err := tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runUntil runs tr until until says so (polled; at most a minute), then
// stops it; Run must end without an error.
func runUntil(t *testing.T, tr *online.Trainer, until func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	for deadline := time.Now().Add(60 * time.Second); !until() && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// examplesTopic starts an embedded broker with a one-partition "examples"
// topic and returns plain client options for it and a client that
// produces to the topic; all are closed when the test ends.
func examplesTopic(t *testing.T) (stream.ClientOptions, *kgo.Client) {
	t.Helper()
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := stream.EnsureTopics(context.Background(), cl, []stream.TopicSpec{{Name: "examples", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	return copts, cl
}

// A trainer consuming the topic reads each batch's memory in chunks done
// by the learner or by prepare (on one core or two), shares context
// features within a request and reuses their rows' slots; one applying
// the same examples one by one
// does none of it, and one paging rows through max_rows reads memory
// inline between its commits. All must hold the same model (rows
// admitted at once or on a second sighting, expired, recreated), memory lists (with
// evictions, rebases and dropped and expired contexts) and registries.
func TestRunLearnsWhatApplyLearns(t *testing.T) {
	copts, cl := examplesTopic(t)
	ctx := context.Background()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	exs := withLateRequests(synth.NewWorld(synth.Options{Seed: 6}).Examples(reg, 3000))
	var recs []*kgo.Record
	for i := range exs {
		recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &exs[i])})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultModelConfig()
	cfg.Memory.ItemsPerContext, cfg.Memory.HalfLife, cfg.Memory.MaxContexts = 4, time.Second, 50
	for _, minCount := range []int{1, 2} { // rows at once; rows on a second sighting
		run := func(maxRows int) *model.Capture {
			return learnTopic(t, online.TrainerOptions{Model: cfg, Client: copts, Topic: "examples",
				CommitInterval: 5 * time.Millisecond, MaxRows: maxRows, TTL: 3 * time.Second, MinCount: minCount}, len(exs))
		}
		applied, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: t.TempDir(), TTL: 3 * time.Second, MinCount: minCount})
		if err != nil {
			t.Fatal(err)
		}
		defer applied.Close()
		for i := range exs {
			if err := applied.Apply(&exs[i]); err != nil {
				t.Fatal(err)
			}
		}
		want, err := applied.Capture()
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Memory) == 0 {
			t.Fatal("the examples made no memory list")
		}
		for _, c := range []struct {
			name string
			got  *model.Capture
		}{{"consumed", run(0)}, {"consumed on one core", oneCore(run)}, {"consumed with max_rows", run(256)}} {
			if !sameCapture(c.got, want) {
				t.Errorf("min_count %d, %s: the model differs from the one applied example by example (applied %d, want %d; %d rows, want %d; %d lists, want %d)",
					minCount, c.name, c.got.Applied, want.Applied, len(c.got.IDs), len(want.IDs), len(c.got.Memory), len(want.Memory))
			}
		}
	}
}

// sameCapture says whether a and b hold the same model, bit for bit:
// rows, task adapters, memory lists, registries, progressive validation.
func sameCapture(a, b *model.Capture) bool {
	return a.Applied == b.Applied && a.Watermark == b.Watermark && slices.Equal(a.IDs, b.IDs) &&
		slices.Equal(a.Weights, b.Weights) && reflect.DeepEqual(a.Tasks, b.Tasks) &&
		reflect.DeepEqual(a.Memory, b.Memory) && reflect.DeepEqual(a.Items, b.Items) &&
		reflect.DeepEqual(a.Popular, b.Popular) && reflect.DeepEqual(a.Progress, b.Progress)
}

// withLateRequests appends three requests of four examples, 10 s behind
// the watermark (past a 3 s TTL), of new users: with min_count 1 their
// rows are created already expired, so each example of a request must
// find them expired and recreate them, never reuse the slots the one
// before it used (or, in a mini-batch, still holds).
func withLateRequests(exs []stream.Example) []stream.Example {
	last := exs[len(exs)-1].EventTime
	for r := range 3 {
		for i := range 4 {
			exs = append(exs, stream.Example{Task: "search", ItemID: fmt.Sprintf("late-item-%d", i), Label: float32(i % 2), Weight: 1,
				EventTime: last - 10_000, Context: []stream.Field{{Name: "user_id", Value: fmt.Sprintf("late-user-%d", r)}, {Name: "query", Value: "late query"}}})
		}
	}
	return exs
}
