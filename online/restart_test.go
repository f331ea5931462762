package online_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// A trainer stopped mid-stream and restarted on the same Pebble directory
// applies every example exactly once: offsets are committed with the
// parameters they produced.
func TestRestartResumesExactly(t *testing.T) {
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "examples", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
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
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- tr.Run(rctx) }()
		deadline := time.Now().Add(60 * time.Second)
		for !until() && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
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
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "examples", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
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
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- tr.Run(rctx) }()
	var c *model.Capture
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err = tr.Capture(); err != nil {
			t.Fatal(err)
		}
		if c.Offsets[0] == 3 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Offsets[0] != 3 || c.Applied != 2 {
		t.Fatalf("offset %d, applied %d: want 3 and 2 (the bad record skipped)", c.Offsets[0], c.Applied)
	}
}
