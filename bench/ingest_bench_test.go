package bench_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/throughput"
)

var ingestEvents = flag.Int("ingest-events", 400_000, "events produced for BenchmarkIngestThroughput")

// BenchmarkIngestThroughput measures events/s from the events topic to
// committed examples through the real ingest stage (RunTxLoop + Ingester)
// on the embedded broker, next to the raw franz-go consume rate of the same
// topic and the same loop copying each event (the floor), measured in the
// same run (bench/throughput). Run it once:
//
//	go test -run '^$' -bench IngestThroughput -benchtime 1x ./bench
func BenchmarkIngestThroughput(b *testing.B) {
	for b.Loop() {
		r, err := throughput.Ingest(context.Background(), throughput.IngestOptions{Events: *ingestEvents,
			AllowedLateness: 5 * time.Second, MaxEventBytes: 64 << 10})
		if err != nil {
			b.Fatal(err)
		}
		reportResult(b, r)
	}
}

// reportResult reports a throughput result as benchmark metrics.
func reportResult(b *testing.B, r *throughput.Result) {
	b.ReportMetric(r.Rate, r.Stage+"_records/s")
	b.ReportMetric(r.RawRate, "raw_records/s")
	b.ReportMetric(r.RawRatio, "ratio_to_raw")
	b.ReportMetric(r.FloorRate, "floor_records/s")
	b.ReportMetric(r.FloorRatio, "ratio_to_floor")
	b.ReportMetric(float64(r.PeakHeap)/(1<<20), "peak_heap_MiB")
	b.ReportMetric(float64(r.VmHWM)/(1<<20), "VmHWM_MiB")
	for name, rate := range r.Variants {
		b.ReportMetric(rate, name+"_records/s")
	}
}
