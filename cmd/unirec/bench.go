package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/bench/freshness"
	"github.com/unirec/unirec/bench/growth"
	"github.com/unirec/unirec/bench/load"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/bench/throughput"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/stream"
)

const benchUsage = `Usage:
  unirec bench produce [flags]   synthetic events with a planted truth, all canvases
  unirec bench replay  [flags]   a data set (movielens, openbandit, jsonl) in event-time order
  unirec bench eval    [flags]   global-timeline evaluation: unified vs per-task models vs popularity
  unirec bench freshness [flags] event -> served model time through the whole pipeline at a steady rate
  unirec bench latency [flags]   serving load: open loop at a fixed rate against a replica process
  unirec bench throughput [flags] ingest and trainer records/s vs raw consume and a floor, same run
  unirec bench shards  [flags]   a sharded trainer on paper: row exchange and owner balance on a real log
  unirec bench growth  [flags]   trainer, Pebble, snapshot and replica sizes and times as users and items grow

Every run writes a report directory (report.md, report.json, SVG plots).
Run "unirec bench <command> -h" for the flags of a command.
`

func cmdBench(ctx context.Context, args []string) error {
	sub, err := subcommand(args, benchUsage+benchServeUsage, "produce", "replay", "eval", "freshness", "throughput", "shards", "growth", "latency", "replica")
	if err != nil {
		return err
	}
	switch sub {
	case "produce":
		return benchProduce(ctx, args[1:])
	case "replay":
		return benchReplay(ctx, args[1:])
	case "eval":
		return benchEval(ctx, args[1:])
	case "freshness":
		return benchFreshness(ctx, args[1:])
	case "throughput":
		return benchThroughput(ctx, args[1:])
	case "shards":
		return benchShards(args[1:])
	case "growth":
		return benchGrowth(ctx, args[1:])
	}
	sub, err = subcommand(args, benchServeUsage, "latency", "replica")
	if err != nil {
		return err
	}
	if sub == "latency" {
		return benchLatency(ctx, args[1:])
	}
	return benchReplica(ctx, args[1:])
}

// benchFlags are the flags every bench command shares.
type benchFlags struct {
	fs      *flag.FlagSet
	brokers string
	topic   string
	report  string
	rate    float64
}

func newBenchFlags(name string) *benchFlags {
	f := &benchFlags{fs: flag.NewFlagSet("unirec bench "+name, flag.ContinueOnError)}
	f.fs.StringVar(&f.brokers, "brokers", "localhost:9092", "Kafka bootstrap brokers, comma-separated")
	f.fs.StringVar(&f.topic, "topic", "unirec.events", "events topic")
	f.fs.StringVar(&f.report, "report", "", "report directory (default bench-reports/<command>-<time>)")
	f.fs.Float64Var(&f.rate, "rate", 0, "events per second (0: as fast as possible)")
	return f
}

func (f *benchFlags) reportDir(name string) string { return bench.ReportDir(f.report, name) }

// client is the plaintext client of --brokers.
func (f *benchFlags) client() stream.ClientOptions {
	return stream.Plaintext(strings.Split(f.brokers, ",")...)
}

// benchProduce produces synthetic events.
func benchProduce(ctx context.Context, args []string) error {
	f := newBenchFlags("produce")
	requests := f.fs.Int("requests", 10000, "synthetic requests (each has impressions and engagements)")
	seed := f.fs.Int64("seed", 1, "seed of the synthetic world")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	// Event times end about now (100 ms of event time per request), so the
	// model a replica serves afterwards is not an hour stale.
	now := time.Now()
	w := synth.NewWorld(synth.Options{Seed: *seed, Start: now.Add(-time.Duration(*requests) * 100 * time.Millisecond), IDPrefix: synth.RunIDPrefix("produce", now)})
	var evs []ingest.Event
	for i := 0; i < *requests; i++ {
		evs = append(evs, w.Next()...)
	}
	recs, err := bench.EventRecords(evs)
	if err != nil {
		return err
	}
	return f.produce(ctx, "produce", recs, map[string]any{"requests": *requests, "seed": *seed, "world": w.String()}, 0)
}

// benchReplay replays a data set.
func benchReplay(ctx context.Context, args []string) error {
	f := newBenchFlags("replay")
	dataset := f.fs.String("dataset", "movielens", "movielens, movietweetings, openbandit, synth or jsonl")
	path := f.fs.String("path", "", "the shared data directory, or the data set's own directory (movielens) or file (openbandit, jsonl) (default: ../shared/data next to the repository)")
	speed := f.fs.Float64("speed", 0, "event-time speed factor (60: one minute of log per second; 0: as fast as possible)")
	rebase := f.fs.Bool("rebase", true, "shift event times by whole weeks so the last event falls in the past week, keeping order, spacing, weekdays and hours of day (not jsonl)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	cfg := map[string]any{"dataset": *dataset, "speed": *speed, "rebase": *rebase}
	recs, err := bench.ReplayRecords(*dataset, *path, *rebase, cfg)
	if err != nil {
		return err
	}
	if err := warnIfHoldsRecords(ctx, f); err != nil {
		return err
	}
	return f.produce(ctx, "replay", recs, cfg, *speed)
}

// warnIfHoldsRecords warns on stderr when the events topic already holds
// records: ingest dead-letters events older than a partition's watermark
// (minus the allowed lateness) as late, so a replay into a used topic may
// lose most of its events.
func warnIfHoldsRecords(ctx context.Context, f *benchFlags) error {
	cl, err := kgo.NewClient(f.client().Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	empty, err := pipeline.TopicEmpty(ctx, cl, f.topic)
	if err != nil {
		return err
	}
	if !empty {
		fmt.Fprintf(os.Stderr, "warning: %s already holds records; ingest dead-letters events older than a partition's watermark as late, so replayed events before the newest ones there may be lost (replay into a fresh system or topic)\n", f.topic)
	}
	return nil
}

// produce produces recs to --topic with the shared flags and writes the
// report of the production.
func (f *benchFlags) produce(ctx context.Context, name string, recs []bench.Record, cfg map[string]any, speed float64) error {
	o := bench.ProduceOptions{Client: f.client(), Topic: f.topic, Rate: f.rate, Speed: speed, Progress: os.Stderr}
	return bench.ProduceReport(ctx, o, name, cfg, recs, f.reportDir(name), os.Stdout)
}

// benchEval runs the global-timeline evaluation on two fresh systems (the
// unified model and per-task isolated models), each a `unirec run` process
// of this binary on its own embedded broker.
func benchEval(ctx context.Context, args []string) error {
	f := newBenchFlags("eval")
	dataset := f.fs.String("dataset", "movielens", "movielens, movietweetings, openbandit or synth")
	path := f.fs.String("path", "", "the shared data directory, or the data set's own directory (movielens, movietweetings) or file (openbandit) (default: ../shared/data next to the repository)")
	var o bench.EvalOptions
	f.fs.Float64Var(&o.Cut, "cut", 0.9, "fraction of events (time order) before the test period; the test period is the rest")
	f.fs.Float64Var(&o.ValidationCut, "validation-cut", 0.8, "fraction of events (time order) before the validation period, which ends at --cut")
	f.fs.StringVar(&o.Period, "period", bench.PeriodTest, "evaluated period: test (train before --cut, ask the rest) or validation (train before --validation-cut, ask up to --cut); choose hyperparameters on validation, report test once")
	f.fs.BoolVar(&o.Live, "live", false, "also ask every system while it keeps learning the evaluated period (prequential, in --live-chunks time-ordered chunks), next to the model frozen at the cut")
	f.fs.IntVar(&o.LiveChunks, "live-chunks", 20, "chunks of the evaluated period produced one by one in --live mode")
	f.fs.IntVar(&o.K, "k", 10, "cut-off of recall@K and NDCG@K")
	f.fs.IntVar(&o.QueriesPerTask, "queries", 1000, "evaluated engagements per task")
	config := f.fs.String("config", "", "extra unirec config for the evaluated systems (canvases, model)")
	f.fs.IntVar(&o.AUCNegatives, "auc-negatives", 4, "random catalog items each evaluated engagement is scored against for the sampled AUC (0: none)")
	f.fs.IntVar(&o.ALS.Factors, "als-factors", 32, "ALS baseline: latent dimension")
	f.fs.IntVar(&o.ALS.Iterations, "als-iterations", 10, "ALS baseline: alternating sweeps")
	f.fs.Float64Var(&o.ALS.Regularization, "als-regularization", 0.1, "ALS baseline: L2 regularization")
	f.fs.Float64Var(&o.ALS.Alpha, "als-alpha", 10, "ALS baseline: confidence per engagement (c = 1 + alpha * count)")
	o.Progress = os.Stderr
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	token, err := apiToken(*config)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the unirec binary: %w", err)
	}
	return bench.RunEval(ctx, bench.EvalRun{EvalOptions: o, Dataset: *dataset, Path: *path, Config: *config, Token: token,
		Exe: exe, ReportDir: f.reportDir("eval"), Out: os.Stdout})
}

// apiToken is the serve.api_token of the unirec config at path ("" when
// there is no path or no token), so bench clients can send it.
func apiToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	cfg, err := pipeline.LoadConfig(path)
	if err != nil {
		return "", err
	}
	err = cfg.LoadSecrets()
	return string(cfg.Secrets.APIToken), err
}

// benchFreshness runs the freshness benchmark: the whole pipeline in this
// process, events at a steady rate, and for each sampled event the time
// until a replica answers with a model whose watermark includes it.
func benchFreshness(ctx context.Context, args []string) error {
	f := newBenchFlags("freshness")
	duration := f.fs.Duration("duration", 20*time.Second, "measured phase (after a warm-up)")
	warmup := f.fs.Duration("warmup", 5*time.Second, "warm-up before measuring")
	reqRate := f.fs.Float64("request-rate", 200, "recommend requests per second during the run")
	skipIngest := f.fs.Bool("skip-ingest", false, "produce examples straight to the examples topic: trainer -> snapshot -> replica only")
	interval := f.fs.Duration("interval", 0, "snapshot.interval (default: the config default)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	o := freshness.Options{Rate: cmp.Or(f.rate, 20_000), Duration: *duration, Warmup: *warmup, SkipIngest: *skipIngest, RequestRate: *reqRate, Interval: *interval,
		Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }, Progress: os.Stderr}
	return freshness.RunReport(ctx, o, f.reportDir("freshness"), os.Stdout)
}

// benchThroughput measures ingest and trainer throughput on an embedded
// broker in this process, each next to the raw consume rate of its topic
// and its floor, measured in the same run.
func benchThroughput(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unirec bench throughput", flag.ContinueOnError)
	stage := fs.String("stage", "all", "ingest, trainer or all")
	events := fs.Int("events", 0, fmt.Sprintf("events (ingest) or examples (trainer) per stage (default %d / %d)", throughput.DefaultEvents, throughput.DefaultExamples))
	config := fs.String("config", "", "unirec config whose canvases, ingest, model and trainer settings are measured")
	report := fs.String("report", "", "report directory (default bench-reports/throughput-<time>)")
	unkeyed := fs.Bool("unkeyed", false, "ingest: produce events without a key, so ingest routes most through the repartition topic")
	cpuList := fs.String("cpus", "", "run each stage with GOMAXPROCS set to each of these, comma-separated (default: as started; taskset limits the machine too)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var cpus []int
	if *cpuList != "" {
		var err error
		if cpus, err = positiveInts("--cpus", *cpuList); err != nil {
			return err
		}
	}
	cfg, err := pipeline.LoadConfig(*config)
	if err != nil {
		return err
	}
	return throughput.RunReport(ctx, *stage, *events, cpus,
		throughput.IngestOptions{Canvases: cfg.Canvases, AllowedLateness: cfg.Ingest.AllowedLateness, MaxEventBytes: cfg.Ingest.MaxEventBytes,
			Unkeyed: *unkeyed, Progress: os.Stderr},
		throughput.TrainerOptions{Canvases: cfg.Canvases, Trainer: cfg.TrainerOptions(), Progress: os.Stderr},
		map[string]any{"stage": *stage, "events": *events, "unkeyed": *unkeyed, "cpus": *cpuList, "config": *config, "canvases": len(cfg.Canvases), "ingest": cfg.Ingest, "model": cfg.Model, "trainer": cfg.Trainer},
		bench.ReportDir(*report, "throughput"), os.Stdout)
}

const benchServeUsage = `Usage:
  unirec bench latency [flags]   serving load benchmark: open loop at a fixed rate against a replica
                                 (its own child process unless --target), kernel vs memory bandwidth
  unirec bench replica [flags]   a replica serving a synthetic model (what bench latency starts)
`

func worldFlags(fs *flag.FlagSet, w *load.World) {
	fs.IntVar(&w.Items, "items", 100000, "catalog size of the synthetic model")
	fs.IntVar(&w.Dim, "dim", 64, "embedding dimension of the synthetic model")
	fs.IntVar(&w.Queries, "queries", 1000, "distinct query contexts per use case")
}

func scoringFlags(fs *flag.FlagSet, s *load.Scoring) {
	fs.IntVar(&s.BatchQueries, "batch-queries", 0, "the replica's serve.load.batch_queries (0: the default; 1: no batching)")
	fs.StringVar(&s.Mode, "scoring", serve.DefaultScoring, "the replica's serve.scoring: exact or int8")
}

// benchReplica serves a synthetic model, optionally applying a delta
// every --deltas, and prints "listening on ADDR" once ready.
func benchReplica(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unirec bench replica", flag.ContinueOnError)
	o := load.ReplicaOptions{Logf: log.Printf}
	worldFlags(fs, &o.World)
	scoringFlags(fs, &o.Scoring)
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "HTTP listen address")
	fs.IntVar(&o.Parallelism, "parallelism", 1, "scoring parallelism of every use case")
	fs.DurationVar(&o.Deltas, "deltas", 0, "apply a delta snapshot this often (0: none)")
	fs.Float64Var(&o.Fraction, "delta-fraction", 0.01, "fraction of the rows a delta changes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return load.ServeReplica(ctx, o, func(a net.Addr) { fmt.Printf("listening on %s\n", a) })
}

// benchLatency runs the serving load benchmark.
func benchLatency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unirec bench latency", flag.ContinueOnError)
	o := load.LatencyOptions{Out: os.Stdout, Progress: os.Stderr}
	worldFlags(fs, &o.World)
	scoringFlags(fs, &o.Scoring)
	fs.StringVar(&o.Target, "target", "", "replica to load (host:port); empty starts `unirec bench replica` as a child process")
	fs.IntVar(&o.K, "k", 100, "items per request")
	fs.Float64Var(&o.Rate, "rate", 1000, "requests per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured load before each run")
	fs.BoolVar(&o.FindMax, "find-max", false, "also step the rate up to find the highest one keeping p99 under --p99")
	fs.DurationVar(&o.P99, "p99", 10*time.Millisecond, "latency target of --find-max")
	fs.DurationVar(&o.Deltas, "deltas", 0, "also measure --rate while the replica applies a delta this often (child replica only)")
	fs.Float64Var(&o.Fraction, "delta-fraction", 0.01, "fraction of the rows each delta changes")
	fs.IntVar(&o.Parallelism, "parallelism", 1, "scoring parallelism of the child replica's use cases")
	fs.IntVar(&o.ClientProcs, "client-procs", 0, fmt.Sprintf("the load generator's GOMAXPROCS during the runs (0: a quarter of the cores, at least 1; here %d)", load.DefaultClientProcs()))
	fs.StringVar(&o.Report, "report", "", "report directory (default bench-reports/latency-<time>)")
	config := fs.String("config", "", "unirec config whose serve.api_token_file/api_token_env is sent to a --target replica that requires it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Token, err = apiToken(*config); err != nil {
		return err
	}
	if o.Exe, err = os.Executable(); err != nil {
		return fmt.Errorf("cannot find the unirec binary: %w", err)
	}
	return load.Latency(ctx, o)
}

// benchShards simulates the sharded trainer of DESIGN.md ("Sharding the
// trainer") on a data set's log: for each number of processes and step
// size, the rows exchanged per example and how evenly owners are loaded.
func benchShards(args []string) error {
	f := newBenchFlags("shards")
	dataset := f.fs.String("dataset", "movielens", "movielens, movietweetings or openbandit")
	path := f.fs.String("path", "", "data set path (default: the shared data directory)")
	config := f.fs.String("config", "bench/movielens.yaml", "unirec config whose canvases and model dim apply")
	procs := f.fs.String("processes", "2,4,8,16", "trainer processes, comma-separated")
	steps := f.fs.String("steps", "256,1024,4096", "examples per synchronous step, comma-separated")
	replicate := f.fs.String("replicate", "0,64", "most updated rows every process holds, comma-separated counts to compare")
	negatives := f.fs.Int("negatives", 4, "sampled negatives per positive")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	ps, err := positiveInts("--processes", *procs)
	if err != nil {
		return err
	}
	bs, err := positiveInts("--steps", *steps)
	if err != nil {
		return err
	}
	rs, err := counts("--replicate", *replicate)
	if err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(*config)
	if err != nil {
		return err
	}
	reg, err := cfg.Registry()
	if err != nil {
		return err
	}
	evs, err := datasets.Load(*dataset, *path, false)
	if err != nil {
		return err
	}
	rate := cmp.Or(f.rate, 20_000)
	rep := bench.NewReport("shards", map[string]any{"dataset": *dataset, "config": *config, "negatives": *negatives, "rate": rate})
	exs := bench.ShardLog(reg, evs, *negatives, 1)
	rep.Figure("events", len(evs))
	rep.Figure("examples", len(exs))
	var figs []bench.ShardFigures
	for _, r := range rs {
		for _, p := range ps {
			for _, b := range bs {
				figs = append(figs, bench.SimulateShards(exs, p, b, cfg.Model.Dim, r))
			}
		}
	}
	rep.Figure("points", figs)
	t := bench.ShardTable(figs, rate)
	rep.AddTable(t)
	dir := f.reportDir("shards")
	fmt.Printf("%s: %d events -> %d examples (%d negatives each), dim %d\n\n%s\nreport in %s\n",
		*dataset, len(evs), len(exs), *negatives, cfg.Model.Dim, bench.MarkdownTable(t.Header, t.Rows), dir)
	return rep.Write(dir)
}

// positiveInts parses a comma-separated list of positive integers.
func positiveInts(flagName, s string) ([]int, error) {
	out, err := counts(flagName, s)
	if err == nil && slices.Contains(out, 0) {
		err = fmt.Errorf("%s: 0 is not a positive integer", flagName)
	}
	return out, err
}

// counts parses a comma-separated list of integers >= 0.
func counts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s: %q is not a count", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// benchGrowth measures what the trainer, its store, snapshots and a replica
// hold, and how long applies and queries take, at each users x items point.
func benchGrowth(ctx context.Context, args []string) error {
	f := newBenchFlags("growth")
	points := f.fs.String("points", "10000x10000,100000x10000,1000000x10000,10000000x10000,100000x100000,100000x1000000",
		"users x items, comma-separated")
	perUser := f.fs.Int("per-user", 2, "engagements per user (each with one negative)")
	spill := f.fs.Bool("rows-dir", false, "give the replica a serve.rows_dir: base rows in files read with pread, not in its heap")
	scoring := f.fs.String("scoring", serve.DefaultScoring, "the replica's serve.scoring: exact or int8")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	var ps []growth.Point
	for _, s := range strings.Split(*points, ",") {
		var p growth.Point
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%dx%d", &p.Users, &p.Items); err != nil || p.Users <= 0 || p.Items <= 0 {
			return fmt.Errorf("--points: %q is not USERSxITEMS with both positive", s)
		}
		ps = append(ps, p)
	}
	dir, err := os.MkdirTemp("", "unirec-growth")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep := bench.NewReport("growth", map[string]any{"points": *points, "per_user": *perUser, "rows_dir": *spill, "scoring": *scoring})
	figs, err := growth.Run(ctx, growth.Options{Points: ps, Dir: dir, PerUser: *perUser, Spill: *spill, Scoring: *scoring,
		Logf: func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }})
	if err != nil {
		return err
	}
	rep.Figure("points", figs)
	t := growth.Table(figs)
	rep.AddTable(t)
	rep.AddPlot("growth-users.svg", "Memory and storage against users (smallest catalog)", growth.Plot(figs))
	out := f.reportDir("growth")
	fmt.Printf("%s\nreport in %s\n", bench.MarkdownTable(t.Header, t.Rows), out)
	return rep.Write(out)
}
