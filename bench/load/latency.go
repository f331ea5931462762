package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
)

// World is the synthetic world both processes of bench latency build
// from the same seed, so the load generator's queries match the replica's
// model.
type World struct {
	Items, Dim, Queries int
}

// Build returns the world and the canvas registry of its model.
func (b World) Build() (*synth.World, *ingest.Registry, error) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		return nil, nil, err
	}
	return synth.NewWorld(synth.Options{Seed: 1, Items: b.Items, Users: 1000}), reg, nil
}

// Scoring is how the bench replica scores: its serve.load.batch_queries
// and serve.scoring.
type Scoring struct {
	BatchQueries int    `json:"batch_queries"`
	Mode         string `json:"scoring"`
}

// Args are the flags of `unirec bench replica` that pass s on.
func (s Scoring) Args() []string {
	return []string{fmt.Sprint("--batch-queries=", s.BatchQueries), "--scoring=" + s.Mode}
}

// ReplicaOptions configures a replica serving a synthetic model.
type ReplicaOptions struct {
	World       World
	Scoring     Scoring
	Listen      string // HTTP listen address (port 0 picks one)
	Parallelism int    // scoring parallelism of every use case
	// Deltas applies a delta snapshot changing Fraction of the rows this
	// often (0: none).
	Deltas   time.Duration
	Fraction float64
	Logf     func(format string, args ...any)
}

// ServeReplica serves World's synthetic model until ctx ends, applying a
// delta every Deltas; ready receives the address it listens on.
func ServeReplica(ctx context.Context, o ReplicaOptions, ready func(net.Addr)) error {
	w, reg, err := o.World.Build()
	if err != nil {
		return err
	}
	m := NewModel(w, reg, o.World.Dim, o.World.Queries, 1)
	var ucs []serve.UseCase
	for _, c := range w.Canvases() {
		ucs = append(ucs, serve.UseCase{Name: c, Environment: serve.Environment{Parallelism: o.Parallelism}})
	}
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, UseCases: ucs, Logf: o.Logf,
		Load: serve.LoadOptions{BatchQueries: o.Scoring.BatchQueries}, Scoring: o.Scoring.Mode})
	if err != nil {
		return err
	}
	if err := r.Apply(m.Full()); err != nil {
		return fmt.Errorf("cannot apply the synthetic model: %w", err)
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
	}
	srv := &http.Server{Handler: r.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	ready(ln.Addr())
	if o.Deltas <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(o.Deltas)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			start := time.Now()
			u := m.Delta(o.Fraction)
			if err := r.Apply(u); err != nil {
				return fmt.Errorf("cannot apply delta: %w", err)
			}
			o.Logf("bench replica: delta version %d (%d rows) applied in %s", u.Manifest.Version, u.Manifest.Rows, time.Since(start).Round(time.Microsecond))
		}
	}
}

// LatencyOptions configures the serving load benchmark.
type LatencyOptions struct {
	World World
	// Scoring is passed to the child replica (reported).
	Scoring Scoring
	// Target is the replica to load (host:port); empty starts
	// `Exe bench replica` as a child process.
	Target string
	// Exe is the unirec binary whose `bench replica` serves World's model.
	Exe         string
	K           int
	Rate        float64       // requests per second
	Duration    time.Duration // measured time per run
	Warmup      time.Duration // unmeasured load before each run
	FindMax     bool          // also step the rate up to the highest keeping p99 under P99
	P99         time.Duration
	Deltas      time.Duration // also measure Rate while the replica applies a delta this often (child replica only)
	Fraction    float64
	Parallelism int // of the child replica's use cases (reported)
	// ClientProcs is the load generator's GOMAXPROCS during the runs; 0
	// is DefaultClientProcs.
	ClientProcs int
	Report      string // report directory
	Token       string // API token sent to the replica
	Out         io.Writer
	Progress    io.Writer

	reqs []*serve.Request // the queries, built once
}

// LatencyReport is everything bench latency measured.
type LatencyReport struct {
	Kernel   KernelFigures `json:"kernel"`
	Baseline *Result       `json:"baseline_healthz"`
	AtRate   *Result       `json:"at_rate"`
	Steps    []*Result     `json:"steps,omitempty"`
	MaxRate  float64       `json:"max_rate_under_p99,omitempty"`
	// UnbatchedBound is the rate the machine's cores sustain scoring one
	// query per pass: cores / the single-query kernel time.
	UnbatchedBound float64 `json:"unbatched_bound"`
	WithDeltas     *Result `json:"with_deltas,omitempty"`
	DeltasSeen     int64   `json:"deltas_applied_during_run,omitempty"`
	Replica        string  `json:"replica"`
	Parallelism    int     `json:"parallelism"`
	ClientProcs    int     `json:"client_procs"`
	Scoring        Scoring `json:"scoring"`
}

// DefaultClientProcs is the load generator's GOMAXPROCS: a quarter of the
// cores, at least one. The generator needs little CPU (about 0.2 ms a
// request), and each P it does not need spins for work between requests
// on a core the replica could use: with two Ps on the 2-core host a
// request cost 930-980 us of CPU in all, against 785-850 us with one, and
// p99 at 1,500 requests/s was 9.5-15 ms against 5.2-8.1 ms (bench/README.md,
// "Serving: the answer path").
func DefaultClientProcs() int { return max(1, runtime.NumCPU()/4) }

// Latency runs the serving load benchmark: the scoring kernel against memory bandwidth, open-loop runs against a replica next to a /healthz baseline at the same rate, optionally a step-up search for the highest rate under a p99 target and a run while deltas are applied; it writes a report directory.
func Latency(ctx context.Context, o LatencyOptions) error {
	if o.Rate <= 0 || o.K <= 0 || o.Duration <= 0 {
		return errors.New("--rate, --k and --duration must be positive")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	f := &o
	w, _, err := f.World.Build()
	if err != nil {
		return err
	}
	rep := &LatencyReport{Parallelism: f.Parallelism, Scoring: f.Scoring}
	r := f.newReport() // before the runs: its start time and load average are theirs
	fmt.Fprintf(f.Out, "scoring kernel on %d x %d float32 (one core)...\n", f.World.Items, f.World.Dim)
	rep.Kernel = MeasureKernel(f.World.Items, f.World.Dim, 7)
	rep.UnbatchedBound = float64(runtime.NumCPU()) / rep.Kernel.KernelTime.Seconds()
	printKernel(f.Out, rep.Kernel)
	target, stop, err := f.replica(ctx, 0)
	if err != nil {
		return err
	}
	rep.Replica = target
	rep.ClientProcs = f.clientProcs()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(rep.ClientProcs))
	cl := client.New(target, HTTPClient(f.Rate)).WithToken(f.Token)
	fmt.Fprintf(f.Out, "\nbaseline: GET /healthz at the same rate (HTTP path, generator and machine noise):")
	if rep.Baseline, err = f.runBaseline(ctx, cl); err != nil {
		stop()
		return err
	}
	if rep.AtRate, err = f.run(ctx, cl, w, f.Rate); err != nil {
		stop()
		return err
	}
	fmt.Fprintf(f.Out, "  vs the /healthz baseline at the same rate: p50 %.1fx, p99 %.1fx\n",
		ratio(rep.AtRate.All.P50, rep.Baseline.All.P50), ratio(rep.AtRate.All.P99, rep.Baseline.All.P99))
	if f.FindMax {
		rep.Steps, rep.MaxRate, err = f.stepUp(ctx, cl, w)
		fmt.Fprintf(f.Out, "unbatched bound (%d cores / %s single-query kernel): %.0f requests/s; found %.2fx of it (batch_queries %d, scoring %s, client_procs %d)\n",
			runtime.NumCPU(), rep.Kernel.KernelTime.Round(time.Microsecond), rep.UnbatchedBound, rep.MaxRate/rep.UnbatchedBound, f.Scoring.BatchQueries, f.Scoring.Mode, rep.ClientProcs)
	}
	stop()
	if err != nil {
		return err
	}
	if f.Deltas > 0 && f.Target == "" {
		if err := f.runWithDeltas(ctx, w, rep); err != nil {
			return err
		}
	}
	return f.writeReport(r, rep)
}

// clientProcs is the generator's GOMAXPROCS during the runs.
func (f *LatencyOptions) clientProcs() int {
	if f.ClientProcs > 0 {
		return f.ClientProcs
	}
	return DefaultClientProcs()
}

// runWithDeltas measures f.Rate against a replica applying deltas.
func (f *LatencyOptions) runWithDeltas(ctx context.Context, w *synth.World, rep *LatencyReport) error {
	target, stop, err := f.replica(ctx, f.Deltas)
	if err != nil {
		return err
	}
	defer stop()
	cl := client.New(target, HTTPClient(f.Rate)).WithToken(f.Token)
	before, err := cl.Model(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(f.Out, "\nwhile applying a delta (%.1f%% of rows) every %s:\n", 100*f.Fraction, f.Deltas)
	if rep.WithDeltas, err = f.run(ctx, cl, w, f.Rate); err != nil {
		return err
	}
	after, err := cl.Model(ctx)
	if err != nil {
		return err
	}
	rep.DeltasSeen = after.Version - before.Version
	fmt.Fprintf(f.Out, "versions applied during the run (incl. warm-up): %d\n", rep.DeltasSeen)
	return nil
}

// stepUp raises the rate until p99 passes the target or errors appear,
// and returns every step and the highest rate that kept p99 under it.
func (f *LatencyOptions) stepUp(ctx context.Context, cl *client.Client, w *synth.World) ([]*Result, float64, error) {
	var steps []*Result
	best := 0.0
	for rate := 50.0; ; rate = nextRate(rate) {
		res, err := f.run(ctx, cl, w, rate)
		if err != nil {
			return steps, best, err
		}
		steps = append(steps, res)
		if res.All.P99 >= f.P99 || res.All.ErrorRate() > 0.001 || res.All.FallbackRate() > 0.001 {
			break
		}
		best = rate
	}
	fmt.Fprintf(f.Out, "\nhighest rate keeping p99 < %s (no errors, no fallbacks): %.0f requests/s\n", f.P99, best)
	return steps, best, nil
}

// nextRate is the step after rate: 50, 100, 250, 500, 750, then +25%
// (rounded to 50). There is no last step: the search ends when a run
// fails (an open-loop generator that falls behind fails it too, since
// latency counts from each request's due time).
func nextRate(rate float64) float64 {
	switch {
	case rate < 100:
		return 100
	case rate < 250:
		return 250
	case rate < 750:
		return rate + 250
	}
	return math.Round(rate*1.25/50) * 50
}

// run warms up, then measures one open-loop run at rate.
func (f *LatencyOptions) run(ctx context.Context, cl *client.Client, w *synth.World, rate float64) (*Result, error) {
	if f.reqs == nil {
		for q := range f.World.Queries {
			for _, c := range w.Canvases() {
				qc := w.QueryContext(c, q)
				f.reqs = append(f.reqs, &serve.Request{UseCase: c, Context: qc, K: f.K})
			}
		}
	}
	reqs := f.reqs
	opts := Options{Client: cl, Rate: rate, Duration: f.Warmup, Request: func(i int) *serve.Request { return reqs[i%len(reqs)] }, Progress: f.Progress}
	if f.Warmup > 0 {
		if _, err := Run(ctx, opts); err != nil {
			return nil, err
		}
	}
	opts.Duration = f.Duration
	res, err := Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	printResult(f.Out, res)
	return res, nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// runBaseline measures GET /healthz at f.Rate.
func (f *LatencyOptions) runBaseline(ctx context.Context, cl *client.Client) (*Result, error) {
	res, err := Run(ctx, Options{Client: cl, Rate: f.Rate, Duration: f.Duration, Progress: f.Progress})
	if err != nil {
		return nil, err
	}
	printResult(f.Out, res)
	return res, nil
}

func printKernel(w io.Writer, k KernelFigures) {
	fmt.Fprintf(w, "  kernel (vek AVX2): %s per query = %.1f GB/s; scalar Go baseline %s (%.2fx)\n",
		k.KernelTime.Round(time.Microsecond), k.KernelGBs, k.ScalarTime.Round(time.Microsecond), k.SpeedupScalar)
	fmt.Fprintf(w, "  memory bandwidth (same run, one core): DRAM read %.1f GB/s, copy %.1f GB/s\n", k.ReadGBs, k.CopyGBs)
	fmt.Fprintf(w, "  kernel on a 256 MiB matrix (no cache help): %.1f GB/s = %.0f%% of DRAM read bandwidth\n", k.KernelBigGBs, 100*k.OfBandwidth)
}

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "\nopen loop at %.0f requests/s for %s:\n", r.Rate, r.Duration)
	fmt.Fprintf(w, "  %-22s %8s %9s %9s %9s %9s %8s %9s %11s %11s\n", "use case", "requests", "p50", "p99", "p99.9", "max", "errors", "fallback", "server p50", "server p99")
	row := func(name string, s Stats) {
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
		fmt.Fprintf(w, "  %-22s %8d %9s %9s %9s %9s %7.2f%% %8.2f%% %11s %11s\n", name, s.Requests, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max),
			100*s.ErrorRate(), 100*s.FallbackRate(), ms(s.ServerP50), ms(s.ServerP99))
	}
	for _, name := range slices.Sorted(maps.Keys(r.UseCases)) {
		row(name, r.UseCases[name])
	}
	row("all", r.All)
	if r.CPUPerRequest > 0 {
		fmt.Fprintf(w, "  machine CPU in use %.0f%% (every process), %s per request\n", 100*r.MachineBusy, r.CPUPerRequest.Round(time.Microsecond))
	}
	if len(r.All.Errors) > 0 || len(r.All.Fallbacks) > 0 {
		fmt.Fprintf(w, "  errors by status %v, fallbacks by reason %v\n", r.All.Errors, r.All.Fallbacks)
	}
}

// newReport starts the report of a latency run with its configuration.
func (f *LatencyOptions) newReport() *bench.Report {
	return bench.NewReport("latency", map[string]any{"items": f.World.Items, "dim": f.World.Dim, "queries": f.World.Queries, "k": f.K,
		"rate": f.Rate, "duration": f.Duration.String(), "warmup": f.Warmup.String(), "find_max": f.FindMax, "p99_target": f.P99.String(),
		"deltas": f.Deltas.String(), "delta_fraction": f.Fraction, "parallelism": f.Parallelism, "client_procs": f.clientProcs(), "target": f.Target,
		"batch_queries": f.Scoring.BatchQueries, "scoring": f.Scoring.Mode})
}

// writeReport writes the report directory: the runs as a table, the
// kernel figures, every figure as JSON and the latency distributions.
func (f *LatencyOptions) writeReport(r *bench.Report, rep *LatencyReport) error {
	r.Figure("latency", rep)
	r.AddTable(latencyTable(rep))
	if len(rep.Steps) > 0 {
		r.AddTable(findMaxTable(rep, f.P99, f.Scoring))
	}
	k := rep.Kernel
	r.AddTable(bench.Table{Title: fmt.Sprintf("Scoring kernel, %d x %d float32, one core", k.Items, f.World.Dim),
		Header: []string{"kernel per query", "kernel GB/s", "scalar Go per query", "kernel / scalar", "DRAM read GB/s", "kernel on 256 MiB, share of DRAM read"},
		Rows: [][]string{{k.KernelTime.Round(time.Microsecond).String(), fmt.Sprintf("%.1f", k.KernelGBs), k.ScalarTime.Round(time.Microsecond).String(),
			fmt.Sprintf("%.2fx", k.SpeedupScalar), fmt.Sprintf("%.1f", k.ReadGBs), fmt.Sprintf("%.0f%%", 100*k.OfBandwidth)}}})
	series := []bench.Series{bench.CDFSeries("GET /healthz baseline", rep.Baseline.All.Latencies()),
		bench.CDFSeries(fmt.Sprintf("recommend at %.0f/s", f.Rate), rep.AtRate.All.Latencies())}
	if rep.WithDeltas != nil {
		series = append(series, bench.CDFSeries("recommend while applying deltas", rep.WithDeltas.All.Latencies()))
	}
	r.AddPlot("latency-cdf.svg", "Request latency (CDF)", bench.CDFPlot("Request latency, open loop (CDF)", series...))
	if len(rep.Steps) > 0 {
		var steps []bench.Series
		for _, st := range rep.Steps {
			steps = append(steps, bench.CDFSeries(fmt.Sprintf("%.0f/s", st.Rate), st.All.Latencies()))
		}
		r.AddPlot("latency-steps-cdf.svg", "Recommend latency per rate step (CDF)", bench.CDFPlot("Recommend latency per rate step (CDF)", steps...))
	}
	dir := bench.ReportDir(f.Report, "latency")
	if err := r.Write(dir); err != nil {
		return err
	}
	fmt.Fprintf(f.Out, "report in %s\n", dir)
	return nil
}

// findMaxTable is the step-up search's answer beside the unbatched bound
// measured in the same run (cores / the single-query kernel time).
func findMaxTable(rep *LatencyReport, p99 time.Duration, sc Scoring) bench.Table {
	found := 0.0
	if rep.UnbatchedBound > 0 {
		found = rep.MaxRate / rep.UnbatchedBound
	}
	return bench.Table{Title: "Highest rate under the p99 target, against the unbatched bound of this run",
		Header: []string{"p99 target", "highest rate", "unbatched bound", "single-query kernel", "found / bound", "batch_queries", "scoring"},
		Rows: [][]string{{p99.String(), fmt.Sprintf("%.0f/s", rep.MaxRate), fmt.Sprintf("%.0f/s", rep.UnbatchedBound),
			rep.Kernel.KernelTime.Round(time.Microsecond).String(), fmt.Sprintf("%.2fx", found),
			fmt.Sprint(sc.BatchQueries), sc.Mode}}}
}

// latencyTable has one row per run, each against the /healthz baseline.
func latencyTable(rep *LatencyReport) bench.Table {
	t := bench.Table{Title: "Open-loop runs (latency from the due time; p99 ratio against the /healthz baseline at the same rate)",
		Header: []string{"run", "rate", "requests", "p50", "p99", "p99.9", "max", "errors", "fallbacks", "server p99", "p99 / baseline p99", "machine CPU in use", "CPU per request"}}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	row := func(name string, r *Result) {
		s := r.All
		t.Rows = append(t.Rows, []string{name, fmt.Sprintf("%.0f/s", r.Rate), fmt.Sprint(s.Requests), ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max),
			fmt.Sprintf("%.2f%%", 100*s.ErrorRate()), fmt.Sprintf("%.2f%%", 100*s.FallbackRate()), ms(s.ServerP99),
			fmt.Sprintf("%.1f", ratio(s.P99, rep.Baseline.All.P99)), fmt.Sprintf("%.0f%%", 100*r.MachineBusy), r.CPUPerRequest.Round(time.Microsecond).String()})
	}
	row("GET /healthz baseline", rep.Baseline)
	row("recommend", rep.AtRate)
	for _, st := range rep.Steps {
		row("find-max step", st)
	}
	if rep.WithDeltas != nil {
		row("recommend while applying deltas", rep.WithDeltas)
	}
	return t
}

// replica returns the address of the replica to load and a function that
// stops it: Target, or a child process serving World's model that
// applies a delta every deltas (0: none).
func (f *LatencyOptions) replica(ctx context.Context, deltas time.Duration) (string, func(), error) {
	if f.Target != "" {
		return f.Target, func() {}, nil
	}
	fmt.Fprintf(f.Out, "starting a replica process serving %d items x %d dims...\n", f.World.Items, f.World.Dim)
	c, err := bench.StartChild(exec.CommandContext(ctx, f.Exe, append([]string{"bench", "replica", fmt.Sprint("--items=", f.World.Items), fmt.Sprint("--dim=", f.World.Dim),
		fmt.Sprint("--queries=", f.World.Queries), fmt.Sprint("--parallelism=", f.Parallelism), "--deltas=" + deltas.String(),
		fmt.Sprint("--delta-fraction=", f.Fraction)}, f.Scoring.Args()...)...), os.Stderr)
	if err != nil {
		return "", nil, fmt.Errorf("cannot start the bench replica: %w", err)
	}
	addrs, err := c.Await(10*time.Minute, bench.AddrHTTP)
	if err != nil {
		c.Stop()
		return "", nil, fmt.Errorf("the bench replica did not start: %w", err)
	}
	return addrs[bench.AddrHTTP], c.Stop, nil
}
