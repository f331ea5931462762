package bench

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/stream"
)

// benchExamples is how many examples the throughput benchmark trains on;
// UNIREC_BENCH_EXAMPLES overrides it.
func benchExamples(b *testing.B) int {
	if s := os.Getenv("UNIREC_BENCH_EXAMPLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("UNIREC_BENCH_EXAMPLES=%q is not a positive integer", s)
		}
		return n
	}
	return 300_000
}

// BenchmarkTrainerThroughput measures the end-to-end trainer (decode,
// featurize, score, update, Pebble commit) from a one-partition examples
// topic on the embedded broker, against the raw franz-go consume rate of the
// same topic measured in the same run, then the same with per-coordinate
// AdaGrad and with a memory bound of 1000 rows (the model has about 1,700).
// Run it with -benchtime 1x.
func BenchmarkTrainerThroughput(b *testing.B) {
	n := benchExamples(b)
	br, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	copts := stream.ClientOptions{Brokers: []string{br.Addr()}}
	produceSynthExamples(b, copts, "examples", n)
	coord := online.DefaultModelConfig()
	coord.Optimizer = online.OptimizerCoordinate
	for b.Loop() {
		raw := rawConsume(b, copts, "examples", n)
		train := trainAll(b, copts, "examples", n, online.TrainerOptions{Model: online.DefaultModelConfig()})
		b.ReportMetric(float64(n)/raw.Seconds(), "raw_consume_ex/s")
		b.ReportMetric(float64(n)/train.Seconds(), "train_ex/s")
		b.ReportMetric(raw.Seconds()/train.Seconds(), "train/raw")
		b.ReportMetric(float64(n)/trainAll(b, copts, "examples", n, online.TrainerOptions{Model: coord}).Seconds(), "coordinate_ex/s")
		bounded := trainAll(b, copts, "examples", n, online.TrainerOptions{Model: online.DefaultModelConfig(), MaxRows: 1000})
		b.ReportMetric(float64(n)/bounded.Seconds(), "max_rows_1000_ex/s")
	}
	b.ReportMetric(peakRSSMiB(b), "peak_rss_MiB")
}

// produceSynthExamples produces n directly labelled synthetic examples to a
// new one-partition topic.
func produceSynthExamples(b *testing.B, copts stream.ClientOptions, topic string, n int) {
	b.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: topic, Partitions: 1}}); err != nil {
		b.Fatal(err)
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1})
	produced := 0
	for produced < n {
		for _, ex := range w.Examples(reg, 1000) {
			if produced == n {
				break
			}
			cl.Produce(ctx, &kgo.Record{Value: stream.AppendExample(nil, &ex)}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Error(err)
				}
			})
			produced++
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// rawConsume times reading n records of topic with a plain franz-go
// consumer: the ceiling the trainer is compared with.
func rawConsume(b *testing.B, copts stream.ClientOptions, topic string, n int) time.Duration {
	b.Helper()
	start := time.Now()
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	got, bytes := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for got < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got++
			bytes += len(r.Value)
		})
	}
	if got < n {
		b.Fatalf("raw consumer read %d of %d records", got, n)
	}
	return time.Since(start)
}

// trainAll times a fresh Trainer.Run from the start of topic until all n
// examples are applied and committed to Pebble.
func trainAll(b *testing.B, copts stream.ClientOptions, topic string, n int, opts online.TrainerOptions) time.Duration {
	b.Helper()
	start := time.Now()
	opts.Dir, opts.Client, opts.Topic = b.TempDir(), copts, topic
	tr, err := online.OpenTrainer(opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for tr.Applied() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		b.Fatal(err)
	}
	if tr.Applied() != int64(n) {
		b.Fatalf("trainer applied %d of %d examples", tr.Applied(), n)
	}
	return time.Since(start)
}

// peakRSSMiB is the process' peak resident set size (VmHWM): broker,
// examples in flight and trainer together.
func peakRSSMiB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Logf("no /proc/self/status: %v", err)
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
