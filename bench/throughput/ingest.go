package throughput

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// IngestOptions configure an ingest throughput run.
type IngestOptions struct {
	Events          int             // synthetic events (4 canvases, about 300 bytes each)
	Canvases        []ingest.Canvas // default ingest.DefaultCanvases()
	AllowedLateness time.Duration
	MaxEventBytes   int
	// Unkeyed produces events without a key (kcat's default): the
	// producer's sticky partitioner spreads them, and ingest routes the
	// three quarters off their request's partition through the
	// repartition topic. Otherwise they are keyed by request id.
	Unkeyed  bool
	Progress io.Writer // progress bars (nil: none)
}

const (
	ingestPartitions = 4
	ingestChangelog  = "bench.changelog"
	copyTopic        = "bench.copy"
)

// Ingest produces opts.Events synthetic events to a fresh 4-partition
// topic of an embedded broker, then measures in turn the raw consume rate
// of the topic, the exactly-once loop (stream.RunTxLoop) with a stage that
// copies each event to one output partition, and the real ingest stage
// (decode, validate, dedupe, join, changelog, examples), each until every
// event is in a committed transaction.
func Ingest(ctx context.Context, opts IngestOptions) (*Result, error) {
	run, err := start("ingest", "stream.RunTxLoop copying each event to one partition", opts.Events, opts.Canvases, ingestPartitions)
	if err != nil {
		return nil, err
	}
	defer run.br.Close()
	res, reg, copts := run.res, run.reg, run.copts
	topics := stream.DefaultTopics()
	if err := produceEvents(ctx, copts, topics, opts.Events, opts.Unkeyed, opts.Progress); err != nil {
		return nil, err
	}
	raw, err := rawConsume(ctx, copts, topics.Events, opts.Events, opts.Progress)
	if err != nil {
		return nil, err
	}
	cs := &countingStage{Stage: &copyStage{}}
	floor, err := runTxLoop(ctx, copts, stream.TxLoopOptions{Topic: topics.Events}, "copy", opts.Events, opts.Progress, cs, cs.committed.Load)
	if err != nil {
		return nil, err
	}
	if err := dropTopic(ctx, copts, copyTopic); err != nil {
		return nil, err
	}
	res.HeapBefore = liveHeap()
	set := metrics.NewSet()
	ing := ingest.New(ingest.Options{Registry: reg, Topics: topics, Changelog: ingestChangelog, Client: copts, Partitions: ingestPartitions,
		AllowedLateness: opts.AllowedLateness, MaxEventBytes: opts.MaxEventBytes, Metrics: set})
	// an event is done once handled in its partition: routed ones are
	// consumed twice, once as "repartitioned"
	consumed := set.GetOrCreateCounter("unirec_ingest_events_consumed_total")
	routed := set.GetOrCreateCounter(`unirec_ingest_events_total{outcome="repartitioned"}`)
	st, err := runTxLoop(ctx, copts, stream.TxLoopOptions{Topic: topics.Events, CoTopics: []string{topics.Repartition}}, "ingest",
		opts.Events, opts.Progress, ing, func() int64 { return int64(consumed.Get()) - int64(routed.Get()) })
	if err != nil {
		return nil, err
	}
	res.record(raw, floor, st)
	return res, nil
}

// runTxLoop measures the exactly-once loop (topics of lo) running stage
// over n events, in its own consumer group, until done (the events handled
// in committed transactions) reaches n.
func runTxLoop(ctx context.Context, copts stream.ClientOptions, lo stream.TxLoopOptions, name string, n int, progress io.Writer,
	stage stream.Stage, done func() int64) (phase, error) {
	lo.Client, lo.Group, lo.TransactionalID = copts, "bench-"+name, "bench-"+name
	return runPhase(ctx, name, n, progress, done, func(ctx context.Context) error {
		return stream.RunTxLoop(ctx, lo, stage)
	})
}

// dropTopic deletes the floor's output, so that the stage runs on the
// broker state the floor ran on, not with a copy of every event more in
// the broker's heap.
func dropTopic(ctx context.Context, copts stream.ClientOptions, topic string) error {
	cl, err := kgo.NewClient(copts.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create admin client: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("cannot delete topic %q: %w", topic, err)
	}
	return nil
}

// produceEvents produces n synthetic events keyed by request id (or
// unkeyed), creating the topics ingest needs.
func produceEvents(ctx context.Context, copts stream.ClientOptions, topics stream.Topics, n int, unkeyed bool, progress io.Writer) error {
	specs := append(topics.Layout(ingestPartitions),
		stream.TopicSpec{Name: ingestChangelog, Partitions: ingestPartitions, Configs: map[string]string{"cleanup.policy": "compact"}},
		stream.TopicSpec{Name: copyTopic, Partitions: 1})
	w := synth.NewWorld(synth.Options{Seed: 1, Step: 100 * time.Millisecond})
	return produce(ctx, copts, topics.Events, specs, n, 0, progress, func(emit func(key, value []byte)) error {
		for _, ev := range w.Next() {
			v, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("cannot encode event: %w", err)
			}
			key := []byte(ev.RequestID) // the contract: request id, else user id
			if ev.RequestID == "" {
				key = []byte(ev.Context["user_id"])
			}
			if unkeyed {
				key = nil
			}
			emit(key, v)
		}
		return nil
	})
}

// countingStage counts the records of committed transactions.
type countingStage struct {
	stream.Stage
	pending   int64
	committed atomic.Int64
}

func (s *countingStage) Process(ctx context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error {
	s.pending += int64(len(recs))
	return s.Stage.Process(ctx, recs, emit)
}

func (s *countingStage) Commit() {
	s.Stage.Commit()
	s.committed.Add(s.pending)
	s.pending = 0
}

func (s *countingStage) Abort() []int32 {
	s.pending = 0
	return s.Stage.Abort()
}

// copyStage is the floor of ingest: it copies every event to partition 0
// of the copy topic and keeps no state.
type copyStage struct{}

func (copyStage) Restore(context.Context, []int32) error { return nil }
func (copyStage) Revoke([]int32)                         {}
func (copyStage) Commit()                                {}
func (copyStage) Abort() []int32                         { return nil }

func (copyStage) Process(_ context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error {
	for _, r := range recs {
		emit(&kgo.Record{Topic: copyTopic, Partition: 0, Key: r.Key, Value: r.Value})
	}
	return nil
}
