package freshness

import (
	"context"
	"flag"
	"testing"
	"time"
)

var (
	rate     = flag.Float64("freshness.rate", 20_000, "events per second")
	duration = flag.Duration("freshness.duration", 20*time.Second, "measured phase")
	reqRate  = flag.Float64("freshness.request-rate", 200, "recommend requests per second during the run")
	interval = flag.Duration("freshness.interval", 0, "snapshot.interval (0: the config default)")
	skip     = flag.Bool("freshness.skip-ingest", false, "produce examples straight to the examples topic (trainer -> snapshot -> replica only)")
)

// BenchmarkFreshness runs the whole pipeline once (b.N is ignored: one
// run is long) and reports freshness, snapshot and latency figures.
//
//	go test -run '^$' -bench Freshness -benchtime 1x ./bench/freshness
func BenchmarkFreshness(b *testing.B) {
	rep, err := Run(context.Background(), Options{Dir: b.TempDir(), Rate: *rate, Duration: *duration, Interval: *interval, SkipIngest: *skip, RequestRate: *reqRate, Logf: b.Logf})
	if err != nil {
		b.Fatal(err)
	}
	b.Log("\n" + rep.String())
	b.ReportMetric(float64(rep.FreshP50.Milliseconds()), "fresh-p50-ms")
	b.ReportMetric(float64(rep.FreshP99.Milliseconds()), "fresh-p99-ms")
	b.ReportMetric(rep.AchievedRate, "events/s")
	b.ReportMetric(float64(rep.DeltaBytes), "delta-bytes")
	b.ReportMetric(float64(rep.FullBytes), "full-bytes")
	b.ReportMetric(float64(rep.ColdStart.Milliseconds()), "cold-start-ms")
	b.ReportMetric(float64(rep.OverlapP99)/float64(max(rep.OtherP99, 1)), "req-p99-apply-ratio")
}
