package freshness

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/unirec/unirec/bench"
)

// AddTo adds the run's figures, tables and distributions to r: freshness
// per sampled event, request latency during the run and idle, apply and
// publish times.
func (rep *Report) AddTo(r *bench.Report) {
	r.Figure("freshness", rep)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	r.AddTable(bench.Table{Title: "Freshness (event produced -> a replica answers with a model that includes it)",
		Header: []string{"events/s", "p50", "p99", "max", "sampled", "never seen", "to a published snapshot p50 / p99", "published -> served p50 / p99"},
		Rows: [][]string{{fmt.Sprintf("%.0f", rep.AchievedRate), ms(rep.FreshP50), ms(rep.FreshP99), ms(rep.Fresh), fmt.Sprint(rep.Samples), fmt.Sprint(rep.Unseen),
			ms(rep.ToPublishP50) + " / " + ms(rep.ToPublishP99), ms(rep.ToServeP50) + " / " + ms(rep.ToServeP99)}}})
	r.AddTable(bench.Table{Title: "Snapshots and serving during the run",
		Header: []string{"fulls", "deltas", "newest full bytes", "mean delta bytes", "publish p99", "apply p99", "request p99", "request p99 overlapping an apply", "idle request p99"},
		Rows: [][]string{{fmt.Sprint(rep.Fulls), fmt.Sprint(rep.Deltas), fmt.Sprint(rep.FullBytes), fmt.Sprint(rep.DeltaBytes),
			ms(rep.PublishP99), ms(rep.ApplyP99), ms(rep.ReqP99), ms(rep.OverlapP99), ms(rep.BaseP99)}}})
	r.AddPlot("freshness-cdf.svg", "Freshness per sampled event (CDF)", bench.CDFPlot("Freshness: event produced -> served (CDF)",
		bench.CDFSeries("sampled events", rep.FreshAll)))
	r.AddPlot("latency-cdf.svg", "Recommend latency (CDF)", bench.CDFPlot("Recommend latency in the replica (CDF)",
		bench.CDFSeries("during the run", rep.ReqAll), bench.CDFSeries("idle baseline", rep.BaseAll)))
	r.AddPlot("apply-publish-cdf.svg", "Snapshot publish and apply times (CDF)", bench.CDFPlot("Snapshot publish and replica apply times (CDF)",
		bench.CDFSeries("publish", rep.PublishAll), bench.CDFSeries("apply", rep.ApplyAll)))
}

// RunReport is `unirec bench freshness`: it runs o on a temporary data
// directory (o.Dir is ignored), writes the report to dir and prints the
// summary to out.
func RunReport(ctx context.Context, o Options, dir string, out io.Writer) error {
	data, err := os.MkdirTemp("", "unirec-freshness")
	if err != nil {
		return err
	}
	defer os.RemoveAll(data)
	o.Dir = data
	r := bench.NewReport("freshness", map[string]any{"events_rate": o.Rate, "duration": o.Duration.String(),
		"warmup": o.Warmup.String(), "request_rate": o.RequestRate, "skip_ingest": o.SkipIngest}) // before the run: its start time and load average
	rep, err := Run(ctx, o)
	if err != nil {
		return err
	}
	rep.AddTo(r)
	if err := r.Write(dir); err != nil {
		return err
	}
	fmt.Fprintln(out, rep.String())
	fmt.Fprintf(out, "report in %s\n", dir)
	return nil
}
