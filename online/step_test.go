package online_test

import (
	"context"
	"runtime"
	"slices"
	"strings"
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

// Mini-batches (model.step) are cut by the log alone (step size,
// transaction markers, records outside transactions) and learned in
// phases whose units do not depend on who runs them, from records decoded
// by as many prepare workers. So one worker on one
// core, four workers, paging through max_rows, and a trainer stopped
// mid-log and restarted on its store all hold the same model, bit for
// bit; an aborted transaction is never learned; and the model is not the
// one learned example by example (the steps were used), though its rows
// are those of the same features.
func TestStepsLearnTheSameModelOnAnyNumberOfWorkers(t *testing.T) {
	copts, plain := examplesTopic(t)
	ctx := context.Background()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	exs := withLateRequests(synth.NewWorld(synth.Options{Seed: 7}).Examples(reg, 3000))
	txn, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"), kgo.TransactionalID("step-test"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	// Transactions of 1 to 500 examples, every fifth aborted, and every
	// seventh run of examples produced outside a transaction.
	sizes := []int{1, 37, 500, 200, 64, 3, 129}
	want := 0
	for i, at := 0, 0; at < len(exs); i++ {
		end := min(len(exs), at+sizes[i%len(sizes)])
		var recs []*kgo.Record
		for k := at; k < end; k++ {
			recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &exs[k])})
		}
		abort := i%5 == 4
		if i%7 == 6 {
			err = plain.ProduceSync(ctx, recs...).FirstErr()
		} else {
			err = streamtest.ProduceTransaction(ctx, txn, recs, 50, abort)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !abort || i%7 == 6 {
			want += end - at
		}
		at = end
	}
	cfg := model.DefaultModelConfig()
	cfg.Memory.ItemsPerContext, cfg.Memory.HalfLife, cfg.Memory.MaxContexts = 4, time.Second, 50
	cfg.Step = 64
	// lookups counts the row decisions of the last trainer run: admissions
	// and expiries.
	var lookups *metrics.Set
	minCount := 2
	open := func(cfg model.ModelConfig, dir string, workers, maxRows int) *online.Trainer {
		lookups = metrics.NewSet()
		tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: dir, Client: copts, Topic: "examples", Metrics: lookups,
			CommitInterval: 5 * time.Millisecond, Workers: workers, PrepareWorkers: max(1, workers), MaxRows: maxRows, TTL: 3 * time.Second, MinCount: minCount})
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	run := func(cfg model.ModelConfig, workers, maxRows int, stopAt int64) *model.Capture {
		dir := t.TempDir()
		tr := open(cfg, dir, workers, maxRows)
		if stopAt > 0 {
			runUntil(t, tr, func() bool { return tr.Applied() >= stopAt })
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			tr = open(cfg, dir, workers, maxRows)
		}
		defer tr.Close()
		runUntil(t, tr, func() bool { return tr.Applied() >= int64(want) })
		c, err := tr.Capture()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	decisions := func() [2]uint64 {
		return [2]uint64{lookups.GetOrCreateCounter("unirec_trainer_features_admitted_total").Get(),
			lookups.GetOrCreateCounter("unirec_trainer_rows_expired_total").Get()}
	}
	var oneWorker *model.Capture
	func() {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
		oneWorker = run(cfg, 1, 0, 0)
	}()
	byStepDecisions := decisions()
	if oneWorker.Applied != int64(want) {
		t.Fatalf("applied %d examples, want the %d not aborted", oneWorker.Applied, want)
	}
	for _, c := range []struct {
		name string
		got  *model.Capture
	}{
		{"four workers", run(cfg, 4, 0, 0)},
		{"four workers with max_rows", run(cfg, 4, 256, 0)},
		{"stopped and restarted", run(cfg, 3, 0, int64(want/2))},
		{"stopped and restarted with max_rows (log stage inline)", run(cfg, 2, 256, int64(want/3))},
		{"stopped and restarted with max_rows (log stage per step)", run(cfg, 4, 256, int64(want/3))},
	} {
		if strings.HasPrefix(c.name, "stopped") {
			c.got.Progress = oneWorker.Progress // a metric of the process, not stored
		}
		if !sameCapture(c.got, oneWorker) {
			t.Errorf("%s: the model differs from one worker's (applied %d, want %d; %d rows, want %d)",
				c.name, c.got.Applied, oneWorker.Applied, len(c.got.IDs), len(oneWorker.IDs))
		}
	}
	seq := cfg
	seq.Step = 0
	exampleByExample := run(seq, 0, 0, 0)
	if got := decisions(); got != byStepDecisions || got[1] == 0 {
		t.Errorf("learning by steps admitted and expired %v rows, example by example %v: the lookups decided differently (or expired nothing)", byStepDecisions, got)
	}
	// Every feature admitted at once: a late request's new rows are expired
	// again by each of its next examples (they are older than the TTL).
	minCount = 1
	run(cfg, 2, 0, 0)
	byStepDecisions = decisions()
	run(seq, 0, 0, 0)
	if got := decisions(); got[1] != byStepDecisions[1] {
		t.Errorf("admitting at once, learning by steps expired %d rows, example by example %d", byStepDecisions[1], got[1])
	}
	if slices.Equal(exampleByExample.Weights, oneWorker.Weights) {
		t.Error("learning by steps of 64 gave the weights of learning example by example")
	}
	// Which features have rows (admission after two sightings, expiry after
	// the TTL, late requests expiring their rows again) depends on the log
	// alone: the lanes' lookups find the rows that example by example finds.
	if !slices.Equal(exampleByExample.IDs, oneWorker.IDs) {
		t.Errorf("learning by steps kept %d rows, example by example %d: not the same features", len(oneWorker.IDs), len(exampleByExample.IDs))
	}
}

// A record produced outside a transaction ends its step, so a log of such
// records is learned in steps of one example: scored against the model
// before it, then every row and the task stepped once, which is what
// learning example by example does. The two must give the same model,
// bit for bit: each feature's slot found by its lane must reach the
// example's score, gradients and updates.
func TestAStepOfOneExampleLearnsAsExampleByExample(t *testing.T) {
	copts, plain := examplesTopic(t)
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	exs := withLateRequests(synth.NewWorld(synth.Options{Seed: 11}).Examples(reg, 1500))
	var recs []*kgo.Record
	for i := range exs {
		recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &exs[i])})
	}
	if err := plain.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	run := func(step, workers int) *model.Capture {
		cfg := model.DefaultModelConfig()
		cfg.Memory.ItemsPerContext, cfg.Memory.HalfLife, cfg.Memory.MaxContexts = 4, time.Second, 50
		cfg.Step = step
		return learnTopic(t, online.TrainerOptions{Model: cfg, Client: copts, Topic: "examples", Metrics: metrics.NewSet(),
			CommitInterval: 5 * time.Millisecond, Workers: workers, TTL: 3 * time.Second, MinCount: 2}, len(exs))
	}
	bySteps, exampleByExample := run(64, 2), run(0, 0)
	if bySteps.Applied != int64(len(exs)) || !sameCapture(bySteps, exampleByExample) {
		t.Errorf("steps of one example (applied %d, %d rows) learned another model than example by example (applied %d, %d rows)",
			bySteps.Applied, len(bySteps.IDs), exampleByExample.Applied, len(exampleByExample.IDs))
	}
}

// A row's updates in a step are summed, then the row takes one AdaGrad
// step: so a step of two copies of an example moves every row exactly as
// one copy of twice the weight, learned example by example (each gradient
// is the weight times a product, so twice it is exactly the sum of two;
// no clipping, and no memory, which would let the second copy read the
// first's count).
func TestAStepSumsEachRowsGradients(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	ex := synth.NewWorld(synth.Options{Seed: 3}).Examples(reg, 1)[0]
	ex.Weight = 1
	twice := ex
	twice.Weight = 2
	cfg := model.DefaultModelConfig()
	cfg.Memory.Enabled = false
	opts := func(copts stream.ClientOptions, step int) online.TrainerOptions {
		cfg.Step = step
		return online.TrainerOptions{Model: cfg, Client: copts, Topic: "examples", Metrics: metrics.NewSet(),
			CommitInterval: 5 * time.Millisecond, Workers: 2, MinCount: 1}
	}
	copts, _ := examplesTopic(t)
	txn, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"), kgo.TransactionalID("sum-test"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	pair := []*kgo.Record{{Value: stream.AppendExample(nil, &ex)}, {Value: stream.AppendExample(nil, &ex)}}
	if err := streamtest.ProduceTransaction(context.Background(), txn, pair, 2, false); err != nil {
		t.Fatal(err)
	}
	bySteps := learnTopic(t, opts(copts, 64), 2)
	copts, plain := examplesTopic(t)
	if err := plain.ProduceSync(context.Background(), &kgo.Record{Value: stream.AppendExample(nil, &twice)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	alone := learnTopic(t, opts(copts, 0), 1)
	if len(alone.IDs) == 0 || !slices.Equal(bySteps.IDs, alone.IDs) || !slices.Equal(bySteps.Weights, alone.Weights) {
		t.Errorf("a step of two copies left %d rows, not the %d rows of one copy of twice the weight (or other weights)", len(bySteps.IDs), len(alone.IDs))
	}
}
