package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/freshness"
)

// benchFreshness runs the freshness benchmark: the whole pipeline in this
// process, events at a steady rate, and for each sampled event the time
// until a replica answers with a model whose watermark includes it.
func benchFreshness(ctx context.Context, args []string) error {
	f := newBenchFlags("freshness")
	duration := f.fs.Duration("duration", 20*time.Second, "measured phase (after a warm-up)")
	warmup := f.fs.Duration("warmup", 5*time.Second, "warm-up before measuring")
	reqRate := f.fs.Float64("request-rate", 200, "recommend requests per second during the run")
	skipIngest := f.fs.Bool("skip-ingest", false, "produce examples straight to the examples topic: trainer -> snapshot -> replica only")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.rate == 0 {
		f.rate = 20_000 // --rate: events per second
	}
	dir, err := os.MkdirTemp("", "unirec-freshness")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o := freshness.Options{Dir: dir, Rate: f.rate, Duration: *duration, Warmup: *warmup, SkipIngest: *skipIngest,
		RequestRate: *reqRate, Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }, Progress: os.Stderr}
	r := bench.NewReport("freshness", map[string]any{"events_rate": f.rate, "duration": duration.String(),
		"warmup": warmup.String(), "request_rate": *reqRate, "skip_ingest": *skipIngest}) // before the run: its start time and load average
	rep, err := freshness.Run(ctx, o)
	if err != nil {
		return err
	}
	r.Figure("freshness", rep)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	r.AddTable(bench.Table{Title: "Freshness (event produced -> a replica answers with a model that includes it)",
		Header: []string{"events/s", "p50", "p99", "max", "sampled", "never seen"},
		Rows:   [][]string{{fmt.Sprintf("%.0f", rep.AchievedRate), ms(rep.FreshP50), ms(rep.FreshP99), ms(rep.Fresh), fmt.Sprint(rep.Samples), fmt.Sprint(rep.Unseen)}}})
	r.AddTable(bench.Table{Title: "Snapshots and serving during the run",
		Header: []string{"fulls", "deltas", "newest full bytes", "mean delta bytes", "publish p99", "apply p99", "request p99", "request p99 overlapping an apply", "idle request p99"},
		Rows: [][]string{{fmt.Sprint(rep.Fulls), fmt.Sprint(rep.Deltas), fmt.Sprint(rep.FullBytes), fmt.Sprint(rep.DeltaBytes),
			ms(rep.PublishP99), ms(rep.ApplyP99), ms(rep.ReqP99), ms(rep.OverlapP99), ms(rep.BaseP99)}}})
	addFreshnessPlots(r, rep)
	out := f.reportDir("freshness")
	if err := r.Write(out); err != nil {
		return err
	}
	fmt.Println(rep.String())
	fmt.Printf("report in %s\n", out)
	return nil
}

// addFreshnessPlots attaches the distributions of a run: freshness per
// sampled event, request latency during the run and idle, apply and
// publish times.
func addFreshnessPlots(r *bench.Report, rep *freshness.Report) {
	r.AddPlot("freshness-cdf.svg", "Freshness per sampled event (CDF)", bench.CDFPlot("Freshness: event produced -> served (CDF)",
		bench.CDFSeries("sampled events", rep.FreshAll)))
	r.AddPlot("latency-cdf.svg", "Recommend latency (CDF)", bench.CDFPlot("Recommend latency in the replica (CDF)",
		bench.CDFSeries("during the run", rep.ReqAll), bench.CDFSeries("idle baseline", rep.BaseAll)))
	r.AddPlot("apply-publish-cdf.svg", "Snapshot publish and apply times (CDF)", bench.CDFPlot("Snapshot publish and replica apply times (CDF)",
		bench.CDFSeries("publish", rep.PublishAll), bench.CDFSeries("apply", rep.ApplyAll)))
}
