package throughput

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// TrainerOptions configure a trainer throughput run.
type TrainerOptions struct {
	Examples int             // directly labelled synthetic examples, about 16 features each
	Canvases []ingest.Canvas // default ingest.DefaultCanvases()
	// Trainer is the trainer's configuration (model, memory bound,
	// admission, TTL, commit interval); Dir, Client and Topic are set by
	// the run.
	Trainer online.TrainerOptions
	// Variants are other configurations measured on the same topic.
	Variants []Variant
	Progress io.Writer // progress bars (nil: none)
}

// Variant is another trainer configuration measured on the same topic.
type Variant struct {
	Name  string
	Apply func(o *online.TrainerOptions)
}

const examplesTopic = "bench.examples"

// Trainer produces opts.Examples synthetic examples to a fresh
// one-partition topic of an embedded broker, then measures in turn the raw
// consume rate of the topic, decoding and featurizing every example
// without learning, and a fresh trainer (decode, featurize, progressive
// validation, update, Pebble commits) until it has applied every example;
// then each variant the same way.
func Trainer(ctx context.Context, opts TrainerOptions) (*Result, error) {
	run, err := start("trainer", "decode and featurize on one goroutine, no learning", opts.Examples, opts.Canvases, 0)
	if err != nil {
		return nil, err
	}
	defer run.br.Close()
	res, copts := run.res, run.copts
	res.Variants = map[string]float64{}
	if err := produceExamples(ctx, copts, run.reg, opts.Examples, opts.Progress); err != nil {
		return nil, err
	}
	raw, err := rawConsume(ctx, copts, examplesTopic, opts.Examples, opts.Progress)
	if err != nil {
		return nil, err
	}
	floor, err := featurizeOnly(ctx, copts, opts.Trainer.Model, opts.Examples, opts.Progress)
	if err != nil {
		return nil, err
	}
	res.HeapBefore = liveHeap()
	to := opts.Trainer
	to.Client, to.Topic = copts, examplesTopic
	st, err := train(ctx, "trainer", to, opts.Examples, opts.Progress)
	if err != nil {
		return nil, err
	}
	res.record(raw, floor, st)
	for _, v := range opts.Variants {
		vo := to
		v.Apply(&vo)
		p, err := train(ctx, v.Name, vo, opts.Examples, opts.Progress)
		if err != nil {
			return nil, err
		}
		res.Variants[v.Name] = p.Rate
	}
	return res, nil
}

// examplesPerTxn is the transaction size of the examples: ingest writes
// examples in transactions, whose markers end the trainer's mini-batches.
const examplesPerTxn = 2000

// produceExamples produces n directly labelled synthetic examples to the
// new one-partition examples topic.
func produceExamples(ctx context.Context, copts stream.ClientOptions, reg *ingest.Registry, n int, progress io.Writer) error {
	w := synth.NewWorld(synth.Options{Seed: 1})
	var buf []byte
	return produce(ctx, copts, examplesTopic, []stream.TopicSpec{{Name: examplesTopic, Partitions: 1}}, n, examplesPerTxn, progress,
		func(emit func(key, value []byte)) error {
			for _, ex := range w.Examples(reg, 1000) {
				buf = stream.AppendExample(buf[:0], &ex)
				emit(nil, append([]byte(nil), buf...))
			}
			return nil
		})
}

// featurizeOnly is the floor of the trainer: it consumes the topic and
// decodes and featurizes each example as the trainer's first stage does
// with one prepare worker, and learns nothing (more prepare workers lift
// it: BenchmarkPrepareBatch).
func featurizeOnly(ctx context.Context, copts stream.ClientOptions, cfg model.ModelConfig, n int, progress io.Writer) (phase, error) {
	var count atomic.Int64
	f := model.Featurizer{Isolated: cfg.Isolated}
	var ex stream.Example
	var ctxIDs, itemIDs []uint64
	var decodeErr error
	p, err := runPhase(ctx, "featurize", n, progress, count.Load, func(ctx context.Context) error {
		return consume(ctx, copts, examplesTopic, &count, func(r *kgo.Record) {
			if err := stream.DecodeExample(r.Value, &ex); err != nil {
				decodeErr = err
				return
			}
			ctxIDs = f.Context(ctxIDs[:0], ex.Task, ex.Context, time.UnixMilli(ex.EventTime))
			itemIDs = f.Item(itemIDs[:0], ex.Task, ex.ItemID, ex.Item)
		})
	})
	if err == nil && decodeErr != nil {
		err = fmt.Errorf("cannot decode example: %w", decodeErr)
	}
	return p, err
}

// train measures a fresh trainer on a new Pebble directory until it has
// applied n examples and committed them: its close (the last synced Pebble
// commit) is timed too, since a short run may commit nothing before it.
func train(ctx context.Context, name string, o online.TrainerOptions, n int, progress io.Writer) (phase, error) {
	dir, err := os.MkdirTemp("", "unirec-throughput")
	if err != nil {
		return phase{}, fmt.Errorf("cannot create trainer dir: %w", err)
	}
	defer os.RemoveAll(dir)
	o.Dir = dir
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	tr, err := online.OpenTrainer(o)
	if err != nil {
		return phase{}, err
	}
	p, err := runPhase(ctx, name, n, progress, tr.Applied, tr.Run)
	closing := time.Now()
	if cerr := tr.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot close trainer: %w", cerr)
	}
	p.Elapsed += time.Since(closing)
	p.Rate = float64(n) / p.Elapsed.Seconds()
	seq, par := o.Metrics.GetOrCreateFloatCounter(online.StepSecondsLogOrder).Get(), o.Metrics.GetOrCreateFloatCounter(online.StepSecondsParallel).Get()
	p.LogOrderShare = ratio(seq, seq+par)
	p.MeanStep = ratio(float64(n), float64(o.Metrics.GetOrCreateCounter(online.StepsTotal).Get()))
	return p, err
}
