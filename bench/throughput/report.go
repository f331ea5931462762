package throughput

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"

	"github.com/unirec/unirec/bench"
)

// Table is the results as a table: each stage next to its raw consume
// rate and its floor, measured in the same run, and, run on several CPU
// counts, to its own rate on the first of them.
func Table(results []*Result) bench.Table {
	t := bench.Table{Title: "Throughput (records/s; ratios against baselines measured in the same run)",
		Header: []string{"stage", "CPUs", "records", "rate", "raw consume", "stage / raw", "floor", "floor rate", "stage / floor", "rate / first CPU count's", "live heap before", "peak heap", "VmHWM"}}
	mib := func(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	first := map[string]*Result{}
	for _, r := range results {
		scaling := ""
		if f, ok := first[r.Stage]; !ok {
			first[r.Stage] = r
		} else if f.CPUs != r.CPUs {
			scaling = fmt.Sprintf("%.2fx (%d CPUs)", ratio(r.Rate, f.Rate), f.CPUs)
		}
		t.Rows = append(t.Rows, []string{r.Stage, fmt.Sprint(r.CPUs), fmt.Sprint(r.Records), fmt.Sprintf("%.0f", r.Rate), fmt.Sprintf("%.0f", r.RawRate),
			fmt.Sprintf("%.2f", r.RawRatio), r.Floor, fmt.Sprintf("%.0f", r.FloorRate), fmt.Sprintf("%.2f", r.FloorRatio), scaling,
			mib(r.HeapBefore), mib(r.PeakHeap), mib(r.VmHWM)})
		for _, name := range slices.Sorted(maps.Keys(r.Variants)) {
			t.Rows = append(t.Rows, []string{r.Stage + ", " + name, fmt.Sprint(r.CPUs), fmt.Sprint(r.Records), fmt.Sprintf("%.0f", r.Variants[name]),
				"", fmt.Sprintf("%.2f", ratio(r.Variants[name], r.RawRate)), "", "", fmt.Sprintf("%.2f", ratio(r.Variants[name], r.FloorRate)), "", "", "", ""})
		}
	}
	return t
}

// Plot is the throughput over time of each phase of a stage's run: the
// raw consumer, the floor and the stage, each from its own start, in
// windows of at least 200 ms (records arrive in fetch-sized bursts, so 20 ms
// windows are mostly zeros and spikes).
func Plot(r *Result) []byte {
	var series []bench.Series
	for _, name := range []string{"raw consume", "floor", r.Stage} {
		series = append(series, bench.RateSeries(name, thin(r.Timelines[name], 0.2)))
	}
	return bench.LinePlot(fmt.Sprintf("%s throughput over time (%d records)", r.Stage, r.Records),
		"seconds since the phase started", "records per second", series)
}

// thin keeps the samples of a timeline at least gap seconds apart, and the
// last one.
func thin(tl []bench.Sample, gap float64) []bench.Sample {
	var out []bench.Sample
	for i, s := range tl {
		if len(out) == 0 || s.Seconds-out[len(out)-1].Seconds >= gap || i == len(tl)-1 {
			out = append(out, s)
		}
	}
	return out
}

// RunReport is `unirec bench throughput`: it measures the stages as
// Stages does, writes the report (config says what was measured) to dir
// and prints the results to out.
func RunReport(ctx context.Context, stage string, n int, cpus []int, in IngestOptions, tr TrainerOptions, config map[string]any, dir string, out io.Writer) error {
	rep := bench.NewReport("throughput", config)
	if len(cpus) == 0 {
		cpus = []int{runtime.GOMAXPROCS(0)}
	}
	var results []*Result
	for _, c := range cpus {
		prev := runtime.GOMAXPROCS(c)
		rs, err := Stages(ctx, stage, n, in, tr)
		runtime.GOMAXPROCS(prev)
		if err != nil {
			return err
		}
		for _, r := range rs {
			r.CPUs = c
		}
		results = append(results, rs...)
	}
	table := Table(results)
	rep.AddTable(table)
	rep.Figure("stages", results)
	first := map[string]float64{}
	for _, r := range results {
		name := "throughput-" + r.Stage
		if len(cpus) > 1 {
			name += fmt.Sprintf("-%dcpu", r.CPUs)
		}
		rep.AddPlot(name+".svg", fmt.Sprintf("%s throughput over time, %d CPUs", r.Stage, r.CPUs), Plot(r))
		fmt.Fprintf(out, "%s, %d CPUs: %.0f records/s = %.2fx the raw consume rate (%.0f/s) and %.2fx its floor (%s, %.0f/s), same run",
			r.Stage, r.CPUs, r.Rate, r.RawRatio, r.RawRate, r.FloorRatio, r.Floor, r.FloorRate)
		if r.LogOrderShare > 0 {
			fmt.Fprintf(out, "; mini-batches of %.0f examples on average: %.0f%% of learning in log order, so at most %.1fx from more workers",
				r.MeanStep, 100*r.LogOrderShare, 1/r.LogOrderShare)
		}
		if base, ok := first[r.Stage]; ok {
			fmt.Fprintf(out, "; %.2fx its rate on %d CPUs", r.Rate/base, cpus[0])
		} else {
			first[r.Stage] = r.Rate
		}
		fmt.Fprintln(out)
	}
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Fprint(out, "\n"+bench.MarkdownTable(table.Header, table.Rows))
	fmt.Fprintf(out, "report in %s\n", dir)
	return nil
}
