package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

var ingestEvents = flag.Int("ingest-events", 400_000, "events produced for BenchmarkIngestThroughput")

// BenchmarkIngestThroughput measures events/s from the events topic to
// committed examples through the real ingest stage (RunTxLoop + Ingester)
// on the embedded broker, next to the raw franz-go consume rate of the same
// topic measured in the same run. Run it once:
//
//	go test -run '^$' -bench IngestThroughput -benchtime 1x ./bench
func BenchmarkIngestThroughput(b *testing.B) {
	for i := 0; i < b.N; i++ {
		runIngestThroughput(b, *ingestEvents)
	}
}

func runIngestThroughput(b *testing.B, n int) {
	br, err := stream.StartBroker(stream.BrokerOptions{Partitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	copts := stream.ClientOptions{Brokers: []string{br.Addr()}}
	topics := stream.DefaultTopics()
	produced := produceSynth(b, copts, topics, n)
	raw := rawConsumeRate(b, copts, topics.Events, produced)
	heapBefore := heapInuse()
	rate, peakHeap := ingestRate(b, copts, topics, produced)
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(raw, "raw_events/s")
	b.ReportMetric(rate/raw, "ratio")
	b.ReportMetric(float64(peakHeap)/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(vmHWM())/(1<<20), "VmHWM_MiB")
	b.Logf("%d events: ingest %.0f events/s, raw franz-go consume %.0f events/s, ratio %.2f; heap %.0f MiB before ingest (broker holding the topic), peak %.0f MiB during; VmHWM %.0f MiB; %d CPUs",
		produced, rate, raw, rate/raw, float64(heapBefore)/(1<<20), float64(peakHeap)/(1<<20), float64(vmHWM())/(1<<20), runtime.NumCPU())
}

// produceSynth produces at least n synthetic events keyed by request id and
// returns how many.
func produceSynth(b *testing.B, copts stream.ClientOptions, topics stream.Topics, n int) int {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic(topics.Events), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	specs := append(topics.Layout(4), stream.TopicSpec{Name: "bench.changelog", Partitions: 4, Configs: map[string]string{"cleanup.policy": "compact"}})
	if err := stream.EnsureTopics(context.Background(), cl, specs); err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1, Step: 100 * time.Millisecond})
	ctx := context.Background()
	count := 0
	for count < n {
		for _, ev := range w.Next() {
			v, err := json.Marshal(ev)
			if err != nil {
				b.Fatal(err)
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(ev.RequestID), Value: v}, func(_ *kgo.Record, err error) {
				if err != nil {
					b.Errorf("produce: %v", err)
				}
			})
			count++
		}
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	return count
}

// rawConsumeRate reads the whole topic with a plain franz-go consumer.
func rawConsumeRate(b *testing.B, copts stream.ClientOptions, topic string, n int) float64 {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	start := time.Now()
	got := 0
	for got < n {
		f := cl.PollFetches(context.Background())
		if err := f.Err0(); err != nil {
			b.Fatal(err)
		}
		got += f.NumRecords()
	}
	return float64(n) / time.Since(start).Seconds()
}

// ingestRate runs the ingest stage until every event is committed and
// returns events/s and the peak heap in use meanwhile.
func ingestRate(b *testing.B, copts stream.ClientOptions, topics stream.Topics, n int) (float64, uint64) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	set := metrics.NewSet()
	ing := ingest.New(ingest.Options{Registry: reg, Topics: topics, Changelog: "bench.changelog", Client: copts,
		AllowedLateness: 5 * time.Second, MaxEventBytes: 64 << 10, Metrics: set})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	st := &timedStage{Ingester: ing}
	go func() {
		done <- stream.RunTxLoop(ctx, stream.TxLoopOptions{Client: copts, Group: "bench-ingest", TransactionalID: "bench-ingest",
			Topic: topics.Events}, st)
	}()
	var peak uint64
	var mu sync.Mutex
	for consumed(set) < float64(n) {
		select {
		case err := <-done:
			b.Fatalf("ingest loop ended: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		mu.Lock()
		peak = max(peak, heapInuse())
		mu.Unlock()
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.Logf("%d transactions with records, %.0f events each; Process took %.0f%% of the wall time, %.0f%% of it producing",
		st.batches, float64(n)/float64(max(st.batches, 1)), 100*st.busy.Seconds()/elapsed.Seconds(), 100*st.emitting.Seconds()/st.busy.Seconds())
	return float64(n) / elapsed.Seconds(), peak
}

func consumed(set *metrics.Set) float64 {
	var sb strings.Builder
	set.WritePrometheus(&sb)
	for _, line := range strings.Split(sb.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "unirec_ingest_events_consumed_total "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return 0
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// vmHWM is the peak resident set size of the process, from /proc.
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb uint64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}

// timedStage counts the non-empty batches of the ingest stage and the time
// spent processing them.
type timedStage struct {
	*ingest.Ingester
	batches  int
	busy     time.Duration
	emitting time.Duration
}

func (s *timedStage) Process(ctx context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error {
	if len(recs) > 0 {
		s.batches++
	}
	t := time.Now()
	var inEmit time.Duration
	err := s.Ingester.Process(ctx, recs, func(r *kgo.Record) {
		t0 := time.Now()
		emit(r)
		inEmit += time.Since(t0)
	})
	s.busy += time.Since(t)
	s.emitting += inEmit
	return err
}
