package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/load"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
)

const benchServeUsage = `Usage:
  unirec bench latency [flags]   serving load benchmark: open loop at a fixed rate against a replica
                                 (its own child process unless --target), kernel vs memory bandwidth
  unirec bench replica [flags]   a replica serving a synthetic model (what bench latency starts)
`

// cmdBenchServing runs the serving benchmarks.
func cmdBenchServing(ctx context.Context, args []string) error {
	sub, err := subcommand(args, benchServeUsage, "latency", "replica")
	if err != nil {
		return err
	}
	if sub == "latency" {
		return benchLatency(ctx, args[1:])
	}
	return benchReplica(ctx, args[1:])
}

// benchWorld is the synthetic world both processes build from the same
// seed, so the load generator's queries match the replica's model.
type benchWorld struct {
	items, dim, queries int
}

func (b benchWorld) build() (*synth.World, *ingest.Registry, error) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		return nil, nil, err
	}
	return synth.NewWorld(synth.Options{Seed: 1, Items: b.items, Users: 1000}), reg, nil
}

func (b *benchWorld) flags(fs *flag.FlagSet) {
	fs.IntVar(&b.items, "items", 100000, "catalog size of the synthetic model")
	fs.IntVar(&b.dim, "dim", 64, "embedding dimension of the synthetic model")
	fs.IntVar(&b.queries, "queries", 1000, "distinct query contexts per use case")
}

// benchReplica serves a synthetic model, optionally applying a delta
// every --deltas, and prints "listening on ADDR" once ready.
func benchReplica(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unirec bench replica", flag.ContinueOnError)
	var bw benchWorld
	bw.flags(fs)
	listen := fs.String("listen", "127.0.0.1:0", "HTTP listen address")
	parallelism := fs.Int("parallelism", 1, "scoring parallelism of every use case")
	deltas := fs.Duration("deltas", 0, "apply a delta snapshot this often (0: none)")
	fraction := fs.Float64("delta-fraction", 0.01, "fraction of the rows a delta changes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	w, reg, err := bw.build()
	if err != nil {
		return err
	}
	m := load.NewModel(w, reg, bw.dim, bw.queries, 1)
	var ucs []serve.UseCase
	for _, c := range w.Canvases() {
		ucs = append(ucs, serve.UseCase{Name: c, Environment: serve.Environment{Parallelism: *parallelism}})
	}
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, UseCases: ucs, Logf: log.Printf})
	if err != nil {
		return err
	}
	if err := r.Apply(m.Full()); err != nil {
		return fmt.Errorf("cannot apply the synthetic model: %w", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: r.Handler()}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Printf("listening on %s\n", ln.Addr())
	if *deltas <= 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(*deltas)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			start := time.Now()
			u := m.Delta(*fraction)
			if err := r.Apply(u); err != nil {
				return fmt.Errorf("cannot apply delta: %w", err)
			}
			log.Printf("bench replica: delta version %d (%d rows) applied in %s", u.Manifest.Version, u.Manifest.Rows, time.Since(start).Round(time.Microsecond))
		}
	}
}

// latencyFlags are the flags of bench latency.
type latencyFlags struct {
	world       benchWorld
	target      string
	k           int
	rate        float64
	duration    time.Duration
	warmup      time.Duration
	findMax     bool
	p99         time.Duration
	deltas      time.Duration
	fraction    float64
	parallelism int
	report      string
	token       string           // serve.api_token of --config, sent to the replica
	reqs        []*serve.Request // the queries, built once
}

func (f *latencyFlags) parse(args []string) error {
	fs := flag.NewFlagSet("unirec bench latency", flag.ContinueOnError)
	f.world.flags(fs)
	fs.StringVar(&f.target, "target", "", "replica to load (host:port); empty starts `unirec bench replica` as a child process")
	fs.IntVar(&f.k, "k", 100, "items per request")
	fs.Float64Var(&f.rate, "rate", 1000, "requests per second")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	fs.BoolVar(&f.findMax, "find-max", false, "also step the rate up to find the highest one keeping p99 under --p99")
	fs.DurationVar(&f.p99, "p99", 10*time.Millisecond, "latency target of --find-max")
	fs.DurationVar(&f.deltas, "deltas", 0, "also measure --rate while the replica applies a delta this often (child replica only)")
	fs.Float64Var(&f.fraction, "delta-fraction", 0.01, "fraction of the rows each delta changes")
	fs.IntVar(&f.parallelism, "parallelism", 1, "scoring parallelism of the child replica's use cases")
	fs.StringVar(&f.report, "report", "", "report directory (default bench-reports/latency-<time>)")
	config := fs.String("config", "", "unirec config whose serve.api_token_file/api_token_env is sent to a --target replica that requires it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if f.token, err = apiToken(*config); err != nil {
		return err
	}
	if f.rate <= 0 || f.k <= 0 || f.duration <= 0 {
		return errors.New("--rate, --k and --duration must be positive")
	}
	return nil
}

// latencyReport is everything bench latency measured.
type latencyReport struct {
	Kernel      load.KernelFigures `json:"kernel"`
	Baseline    *load.Result       `json:"baseline_healthz"`
	AtRate      *load.Result       `json:"at_rate"`
	Steps       []*load.Result     `json:"steps,omitempty"`
	MaxRate     float64            `json:"max_rate_under_p99,omitempty"`
	WithDeltas  *load.Result       `json:"with_deltas,omitempty"`
	DeltasSeen  int64              `json:"deltas_applied_during_run,omitempty"`
	Replica     string             `json:"replica"`
	Parallelism int                `json:"parallelism"`
}

// benchLatency runs the serving load benchmark.
func benchLatency(ctx context.Context, args []string) error {
	var f latencyFlags
	if err := f.parse(args); err != nil {
		return err
	}
	w, _, err := f.world.build()
	if err != nil {
		return err
	}
	rep := &latencyReport{Parallelism: f.parallelism}
	r := f.newReport() // before the runs: its start time and load average are theirs
	fmt.Printf("scoring kernel on %d x %d float32 (one core)...\n", f.world.items, f.world.dim)
	rep.Kernel = load.MeasureKernel(f.world.items, f.world.dim, 7)
	printKernel(rep.Kernel)
	target, stop, err := f.replica(ctx, 0)
	if err != nil {
		return err
	}
	rep.Replica = target
	cl := client.New(target, load.HTTPClient(f.rate)).WithToken(f.token)
	fmt.Printf("\nbaseline: GET /healthz at the same rate (HTTP path, generator and machine noise):")
	if rep.Baseline, err = f.runBaseline(ctx, cl); err != nil {
		stop()
		return err
	}
	if rep.AtRate, err = f.run(ctx, cl, w, f.rate); err != nil {
		stop()
		return err
	}
	fmt.Printf("  vs the /healthz baseline at the same rate: p50 %.1fx, p99 %.1fx\n",
		ratio(rep.AtRate.All.P50, rep.Baseline.All.P50), ratio(rep.AtRate.All.P99, rep.Baseline.All.P99))
	if f.findMax {
		rep.Steps, rep.MaxRate, err = f.stepUp(ctx, cl, w)
	}
	stop()
	if err != nil {
		return err
	}
	if f.deltas > 0 && f.target == "" {
		if err := f.runWithDeltas(ctx, w, rep); err != nil {
			return err
		}
	}
	return f.writeReport(r, rep)
}

// runWithDeltas measures f.rate against a replica applying deltas.
func (f *latencyFlags) runWithDeltas(ctx context.Context, w *synth.World, rep *latencyReport) error {
	target, stop, err := f.replica(ctx, f.deltas)
	if err != nil {
		return err
	}
	defer stop()
	cl := client.New(target, load.HTTPClient(f.rate)).WithToken(f.token)
	before, err := cl.Model(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("\nwhile applying a delta (%.1f%% of rows) every %s:\n", 100*f.fraction, f.deltas)
	if rep.WithDeltas, err = f.run(ctx, cl, w, f.rate); err != nil {
		return err
	}
	after, err := cl.Model(ctx)
	if err != nil {
		return err
	}
	rep.DeltasSeen = after.Version - before.Version
	fmt.Printf("versions applied during the run (incl. warm-up): %d\n", rep.DeltasSeen)
	return nil
}

// stepUp raises the rate until p99 passes the target or errors appear,
// and returns every step and the highest rate that kept p99 under it.
func (f *latencyFlags) stepUp(ctx context.Context, cl *client.Client, w *synth.World) ([]*load.Result, float64, error) {
	var steps []*load.Result
	best := 0.0
	for _, rate := range []float64{50, 100, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2500, 3000, 4000, 5000} {
		res, err := f.run(ctx, cl, w, rate)
		if err != nil {
			return steps, best, err
		}
		steps = append(steps, res)
		if res.All.P99 >= f.p99 || res.All.ErrorRate() > 0.001 || res.All.FallbackRate() > 0.001 {
			break
		}
		best = rate
	}
	fmt.Printf("\nhighest rate keeping p99 < %s (no errors, no fallbacks): %.0f requests/s\n", f.p99, best)
	return steps, best, nil
}

// run warms up, then measures one open-loop run at rate.
func (f *latencyFlags) run(ctx context.Context, cl *client.Client, w *synth.World, rate float64) (*load.Result, error) {
	if f.reqs == nil {
		for q := range f.world.queries {
			for _, c := range w.Canvases() {
				qc, _ := w.Query(c, q)
				f.reqs = append(f.reqs, &serve.Request{UseCase: c, Context: qc, K: f.k})
			}
		}
	}
	reqs := f.reqs
	opts := load.Options{Client: cl, Rate: rate, Duration: f.warmup, Request: func(i int) *serve.Request { return reqs[i%len(reqs)] }, Progress: os.Stderr}
	if f.warmup > 0 {
		if _, err := load.Run(ctx, opts); err != nil {
			return nil, err
		}
	}
	opts.Duration = f.duration
	res, err := load.Run(ctx, opts)
	if err != nil {
		return nil, err
	}
	printResult(res)
	return res, nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// runBaseline measures GET /healthz at f.rate.
func (f *latencyFlags) runBaseline(ctx context.Context, cl *client.Client) (*load.Result, error) {
	res, err := load.Run(ctx, load.Options{Client: cl, Rate: f.rate, Duration: f.duration, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	printResult(res)
	return res, nil
}

// replica returns the address of the replica to load and a function that
// stops it: --target, or a child `unirec bench replica` process.
func (f *latencyFlags) replica(ctx context.Context, deltas time.Duration) (string, func(), error) {
	if f.target != "" {
		return f.target, func() {}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("cannot find the unirec binary: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, "bench", "replica", fmt.Sprint("--items=", f.world.items), fmt.Sprint("--dim=", f.world.dim),
		fmt.Sprint("--queries=", f.world.queries), fmt.Sprint("--parallelism=", f.parallelism), "--deltas="+deltas.String(),
		fmt.Sprint("--delta-fraction=", f.fraction))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("cannot start the bench replica: %w", err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	fmt.Printf("starting a replica process serving %d items x %d dims...\n", f.world.items, f.world.dim)
	line, err := bufio.NewReader(out).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("the bench replica did not start: %q %v", line, err)
	}
	go io.Copy(io.Discard, out)
	return addr, stop, nil
}

func printKernel(k load.KernelFigures) {
	fmt.Printf("  kernel (vek AVX2): %s per query = %.1f GB/s; scalar Go baseline %s (%.2fx)\n",
		k.KernelTime.Round(time.Microsecond), k.KernelGBs, k.ScalarTime.Round(time.Microsecond), k.SpeedupScalar)
	fmt.Printf("  memory bandwidth (same run, one core): DRAM read %.1f GB/s, copy %.1f GB/s\n", k.ReadGBs, k.CopyGBs)
	fmt.Printf("  kernel on a 256 MiB matrix (no cache help): %.1f GB/s = %.0f%% of DRAM read bandwidth\n", k.KernelBigGBs, 100*k.OfBandwidth)
}

func printResult(r *load.Result) {
	fmt.Printf("\nopen loop at %.0f requests/s for %s:\n", r.Rate, r.Duration)
	fmt.Printf("  %-22s %8s %9s %9s %9s %9s %8s %9s %11s %11s\n", "use case", "requests", "p50", "p99", "p99.9", "max", "errors", "fallback", "server p50", "server p99")
	row := func(name string, s load.Stats) {
		ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
		fmt.Printf("  %-22s %8d %9s %9s %9s %9s %7.2f%% %8.2f%% %11s %11s\n", name, s.Requests, ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max),
			100*s.ErrorRate(), 100*s.FallbackRate(), ms(s.ServerP50), ms(s.ServerP99))
	}
	for _, name := range sortedKeys(r.UseCases) {
		row(name, r.UseCases[name])
	}
	row("all", r.All)
	if len(r.All.Errors) > 0 || len(r.All.Fallbacks) > 0 {
		fmt.Printf("  errors by status %v, fallbacks by reason %v\n", r.All.Errors, r.All.Fallbacks)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// newReport starts the report of a latency run with its configuration.
func (f *latencyFlags) newReport() *bench.Report {
	return bench.NewReport("latency", map[string]any{"items": f.world.items, "dim": f.world.dim, "queries": f.world.queries, "k": f.k,
		"rate": f.rate, "duration": f.duration.String(), "warmup": f.warmup.String(), "find_max": f.findMax, "p99_target": f.p99.String(),
		"deltas": f.deltas.String(), "delta_fraction": f.fraction, "parallelism": f.parallelism, "target": f.target})
}

// writeReport writes the report directory: the runs as a table, the
// kernel figures, every figure as JSON and the latency distributions.
func (f *latencyFlags) writeReport(r *bench.Report, rep *latencyReport) error {
	r.Figure("latency", rep)
	r.AddTable(latencyTable(rep))
	k := rep.Kernel
	r.AddTable(bench.Table{Title: fmt.Sprintf("Scoring kernel, %d x %d float32, one core", k.Items, f.world.dim),
		Header: []string{"kernel per query", "kernel GB/s", "scalar Go per query", "kernel / scalar", "DRAM read GB/s", "kernel on 256 MiB, share of DRAM read"},
		Rows: [][]string{{k.KernelTime.Round(time.Microsecond).String(), fmt.Sprintf("%.1f", k.KernelGBs), k.ScalarTime.Round(time.Microsecond).String(),
			fmt.Sprintf("%.2fx", k.SpeedupScalar), fmt.Sprintf("%.1f", k.ReadGBs), fmt.Sprintf("%.0f%%", 100*k.OfBandwidth)}}})
	series := []bench.Series{bench.CDFSeries("GET /healthz baseline", rep.Baseline.All.Latencies()),
		bench.CDFSeries(fmt.Sprintf("recommend at %.0f/s", f.rate), rep.AtRate.All.Latencies())}
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
	dir := (&benchFlags{report: f.report}).reportDir("latency")
	if err := r.Write(dir); err != nil {
		return err
	}
	fmt.Printf("report in %s\n", dir)
	return nil
}

// latencyTable has one row per run, each against the /healthz baseline.
func latencyTable(rep *latencyReport) bench.Table {
	t := bench.Table{Title: "Open-loop runs (latency from the due time; p99 ratio against the /healthz baseline at the same rate)",
		Header: []string{"run", "rate", "requests", "p50", "p99", "p99.9", "max", "errors", "fallbacks", "server p99", "p99 / baseline p99"}}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
	row := func(name string, r *load.Result) {
		s := r.All
		t.Rows = append(t.Rows, []string{name, fmt.Sprintf("%.0f/s", r.Rate), fmt.Sprint(s.Requests), ms(s.P50), ms(s.P99), ms(s.P999), ms(s.Max),
			fmt.Sprintf("%.2f%%", 100*s.ErrorRate()), fmt.Sprintf("%.2f%%", 100*s.FallbackRate()), ms(s.ServerP99),
			fmt.Sprintf("%.1f", ratio(s.P99, rep.Baseline.All.P99))})
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
