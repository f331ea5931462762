package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/bench/freshness"
	"github.com/unirec/unirec/bench/load"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/bench/throughput"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

const benchUsage = `Usage:
  unirec bench produce [flags]   synthetic events with a planted truth, all canvases
  unirec bench replay  [flags]   a data set (movielens, openbandit, jsonl) in event-time order
  unirec bench eval    [flags]   global-timeline evaluation: unified vs per-task models vs popularity
  unirec bench freshness [flags] event -> served model time through the whole pipeline at a steady rate
  unirec bench latency [flags]   serving load: open loop at a fixed rate against a replica process
  unirec bench throughput [flags] ingest and trainer records/s vs raw consume and a floor, same run

Every run writes a report directory (report.md, report.json, SVG plots).
Run "unirec bench <command> -h" for the flags of a command.
`

func cmdBench(ctx context.Context, args []string) error {
	sub, err := subcommand(args, benchUsage+benchServeUsage, "produce", "replay", "eval", "freshness", "throughput", "latency", "replica")
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
	return produceReport(ctx, f, "produce", evs, map[string]any{"requests": *requests, "seed": *seed, "world": w.String()}, 0)
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
	var evs []ingest.Event
	var recs []bench.Record
	var err error
	if *dataset == "jsonl" {
		if *path == "" {
			return fmt.Errorf("--path is required for --dataset jsonl")
		}
		recs, err = bench.ReadJSONLFile(*path)
	} else {
		evs, err = datasets.Load(*dataset, *path, false)
	}
	if err != nil {
		return err
	}
	cfg := map[string]any{"dataset": *dataset, "speed": *speed, "rebase": *rebase}
	if *rebase && *dataset != "synth" { // synth is made to end now
		shift := datasets.RebaseWeeks(evs, time.Now().UTC())
		cfg["rebase_weeks"] = int(shift / datasets.Week)
	}
	if err := warnIfHoldsRecords(ctx, f); err != nil {
		return err
	}
	if recs != nil {
		return produceRecords(ctx, f, "replay", recs, cfg, *speed)
	}
	return produceReport(ctx, f, "replay", evs, cfg, *speed)
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

func produceReport(ctx context.Context, f *benchFlags, name string, evs []ingest.Event, cfg map[string]any, speed float64) error {
	recs, err := bench.EventRecords(evs)
	if err != nil {
		return err
	}
	return produceRecords(ctx, f, name, recs, cfg, speed)
}

func produceRecords(ctx context.Context, f *benchFlags, name string, recs []bench.Record, cfg map[string]any, speed float64) error {
	cfg["brokers"], cfg["topic"], cfg["rate"] = f.brokers, f.topic, f.rate
	rep := bench.NewReport(name, cfg)
	res, err := bench.Produce(ctx, bench.ProduceOptions{Client: f.client(), Topic: f.topic, Rate: f.rate, Speed: speed, Progress: os.Stderr}, recs)
	if err != nil {
		return err
	}
	bench.AddProduction(rep, res)
	dir := f.reportDir(name)
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Printf("%d events in %.2fs (%.0f events/s) to %s on %s; report in %s\n", res.Records, res.Elapsed.Seconds(), res.Rate, f.topic, f.brokers, dir)
	return nil
}

// benchEval runs the global-timeline evaluation on two fresh systems (the
// unified model and per-task isolated models), each a `unirec run` process
// of this binary on its own embedded broker.
func benchEval(ctx context.Context, args []string) error {
	f := newBenchFlags("eval")
	dataset := f.fs.String("dataset", "movielens", "movielens, movietweetings, openbandit or synth")
	path := f.fs.String("path", "", "the shared data directory, or the data set's own directory (movielens, movietweetings) or file (openbandit) (default: ../shared/data next to the repository)")
	cut := f.fs.Float64("cut", 0.9, "fraction of events (time order) before the test period; the test period is the rest")
	valCut := f.fs.Float64("validation-cut", 0.8, "fraction of events (time order) before the validation period, which ends at --cut")
	period := f.fs.String("period", bench.PeriodTest, "evaluated period: test (train before --cut, ask the rest) or validation (train before --validation-cut, ask up to --cut); choose hyperparameters on validation, report test once")
	live := f.fs.Bool("live", false, "also ask every system while it keeps learning the evaluated period (prequential, in --live-chunks time-ordered chunks), next to the model frozen at the cut")
	liveChunks := f.fs.Int("live-chunks", 20, "chunks of the evaluated period produced one by one in --live mode")
	k := f.fs.Int("k", 10, "cut-off of recall@K and NDCG@K")
	queries := f.fs.Int("queries", 1000, "evaluated engagements per task")
	config := f.fs.String("config", "", "extra unirec config for the evaluated systems (canvases, model)")
	aucNegs := f.fs.Int("auc-negatives", 4, "random catalog items each evaluated engagement is scored against for the sampled AUC (0: none)")
	var als bench.ALSOptions
	f.fs.IntVar(&als.Factors, "als-factors", 32, "ALS baseline: latent dimension")
	f.fs.IntVar(&als.Iterations, "als-iterations", 10, "ALS baseline: alternating sweeps")
	f.fs.Float64Var(&als.Regularization, "als-regularization", 0.1, "ALS baseline: L2 regularization")
	f.fs.Float64Var(&als.Alpha, "als-alpha", 10, "ALS baseline: confidence per engagement (c = 1 + alpha * count)")
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if *cut <= 0 || *cut >= 1 {
		return fmt.Errorf("--cut must be in (0, 1), got %v", *cut)
	}
	if *valCut <= 0 || *valCut >= *cut {
		return fmt.Errorf("--validation-cut must be in (0, --cut=%v), got %v", *cut, *valCut)
	}
	if *period != bench.PeriodTest && *period != bench.PeriodValidation {
		return fmt.Errorf("--period must be %s or %s, got %q", bench.PeriodTest, bench.PeriodValidation, *period)
	}
	if *liveChunks < 1 {
		return fmt.Errorf("--live-chunks must be at least 1, got %d", *liveChunks)
	}
	evs, err := datasets.Load(*dataset, *path, true)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "unirec-eval")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var systems []bench.System
	for _, isolated := range []bool{false, true} {
		name := map[bool]string{false: "unified", true: "per-task"}[isolated]
		sys, stop, err := startEvalSystem(ctx, filepath.Join(work, name), name, isolated, *config)
		if err != nil {
			return err
		}
		defer stop()
		systems = append(systems, sys)
	}
	rep := bench.NewReport("eval", map[string]any{"dataset": *dataset, "period": *period, "cut": *cut, "validation_cut": *valCut,
		"live": *live, "live_chunks": *liveChunks, "k": *k, "queries_per_task": *queries,
		"auc_negatives": *aucNegs, "events": len(evs), "config": *config, "als": als})
	auc := map[string]*bench.Series{}
	res, err := bench.Evaluate(ctx, bench.EvalOptions{Events: evs, Cut: *cut, ValidationCut: *valCut, Period: *period,
		Live: *live, LiveChunks: *liveChunks, ALS: als, K: *k, QueriesPerTask: *queries,
		Systems: systems, Reference: "unified", AUCNegatives: *aucNegs, Topic: "unirec.events", Progress: os.Stderr,
		OnTraining: func(sys string, sec float64, tasks map[string]bench.TaskMetrics) {
			for task, m := range tasks {
				key := sys + " " + task
				if auc[key] == nil {
					auc[key] = &bench.Series{Name: key}
				}
				auc[key].X = append(auc[key].X, float64(m.Examples))
				auc[key].Y = append(auc[key].Y, m.AUC)
			}
		}})
	if err != nil {
		return err
	}
	rep.Figure("trained_events", res.Train)
	rep.Figure("evaluated_period_events", res.Asked)
	rep.AddPlot("progressive-auc.svg", "Progressive AUC per task while training",
		bench.LinePlot("Progressive AUC (windowed) per task", "examples trained in the task", "AUC", bench.SortedSeries(auc)))
	tables := []bench.Table{evalTable(res.Summaries, *k, *period), versusTable(res.Versus, res.VersusNDCG, *k)}
	if *live {
		tables = append(tables, freshnessTable(res.Freshness, res.FreshnessNDCG, *k, *liveChunks))
	}
	for _, t := range tables {
		rep.AddTable(t)
	}
	rep.Figure("results", res.Summaries)
	rep.Figure("unified_minus", res.Versus)
	rep.Figure("unified_minus_ndcg", res.VersusNDCG)
	if *live {
		rep.Figure("live_minus_frozen", res.Freshness)
		rep.Figure("live_minus_frozen_ndcg", res.FreshnessNDCG)
	}
	dir := f.reportDir("eval")
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Printf("\n%s period: trained on %d events, asked about %d\n", *period, res.Train, res.Asked)
	for _, t := range tables {
		fmt.Print("\n" + t.Title + "\n\n" + bench.MarkdownTable(t.Header, t.Rows))
	}
	fmt.Printf("report in %s\n", dir)
	return nil
}

// evalSystems is the row order of the quality table: the evaluated
// systems, frozen then live, then the baselines.
func evalSystems(res map[string]map[string]bench.Summary) []string {
	var out []string
	for _, sys := range []string{"unified", "per-task", "unified" + bench.LiveSuffix, "per-task" + bench.LiveSuffix} {
		if res[sys] != nil {
			out = append(out, sys)
		}
	}
	return append(out, bench.BaselineNames...)
}

func evalTable(res map[string]map[string]bench.Summary, k int, period string) bench.Table {
	t := bench.Table{Title: fmt.Sprintf("Quality on the %s period (recall@%d = HR@%d, NDCG@%d, MRR, sampled AUC with 95%% bootstrap intervals; baselines built from the training events, frozen at the cut)", period, k, k, k),
		Header: []string{"task", "system", "queries", fmt.Sprintf("recall@%d", k), fmt.Sprintf("NDCG@%d", k), "MRR", "sampled AUC", "coverage"}}
	for _, task := range sortedKeys(res["popularity"]) {
		for _, sys := range evalSystems(res) {
			s := res[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, fmt.Sprint(s.Queries), interval(s.Recall), interval(s.NDCG), interval(s.MRR), interval(s.AUC), fmt.Sprintf("%.3f", s.Coverage)})
		}
	}
	return t
}

// versusTable says, per task, whether the unified model's recall and NDCG
// are higher than each other system's beyond chance (paired bootstrap).
func versusTable(recall, ndcg map[string]map[string]bench.Interval, k int) bench.Table {
	t := bench.Table{Title: fmt.Sprintf("Unified minus each other system, recall@%d and NDCG@%d (paired bootstrap, 95%%)", k, k),
		Header: []string{"task", "versus", "recall difference", "verdict", "NDCG difference", "verdict"}}
	for _, sys := range sortedKeys(recall) {
		for _, task := range sortedKeys(recall[sys]) {
			r, n := recall[sys][task], ndcg[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, difference(r), verdict(r, "unified"), difference(n), verdict(n, "unified")})
		}
	}
	return t
}

// freshnessTable says, per system and task, what learning the evaluated
// period while being asked is worth over the model frozen at the cut.
func freshnessTable(recall, ndcg map[string]map[string]bench.Interval, k, chunks int) bench.Table {
	t := bench.Table{Title: fmt.Sprintf("The value of freshness: live (learning the period in %d chunks, each asked before it is learned) minus frozen at the cut, recall@%d and NDCG@%d (paired bootstrap, 95%%)", chunks, k, k),
		Header: []string{"task", "system", "recall difference", "verdict", "NDCG difference", "verdict"}}
	for _, sys := range sortedKeys(recall) {
		for _, task := range sortedKeys(recall[sys]) {
			r, n := recall[sys][task], ndcg[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, difference(r), verdict(r, "live"), difference(n), verdict(n, "live")})
		}
	}
	return t
}

func difference(d bench.Interval) string {
	return fmt.Sprintf("%+.4f [%+.4f, %+.4f]", d.Mean, d.Low, d.High)
}

func verdict(d bench.Interval, who string) string {
	switch {
	case d.Low > 0:
		return who + " better beyond chance"
	case d.High < 0:
		return who + " worse beyond chance"
	}
	return "within chance"
}

func interval(i bench.Interval) string {
	return fmt.Sprintf("%.4f [%.4f, %.4f]", i.Mean, i.Low, i.High)
}

// startEvalSystem starts `unirec run --demo=false` on free ports.
func startEvalSystem(ctx context.Context, dir, name string, isolated bool, extra string) (bench.System, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bench.System{}, nil, err
	}
	cfgPath := filepath.Join(dir, "unirec.yaml")
	cfg := fmt.Sprintf("model:\n  isolated: %v\nsnapshot:\n  interval: 500ms\n", isolated)
	if extra != "" {
		b, err := os.ReadFile(extra)
		if err != nil {
			return bench.System{}, nil, fmt.Errorf("cannot read --config: %w", err)
		}
		cfg = string(b) + "\n"
		if isolated {
			cfg = strings.Replace(cfg, "isolated: false", "isolated: true", 1)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return bench.System{}, nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return bench.System{}, nil, err
	}
	log, err := os.Create(filepath.Join(dir, "unirec.log"))
	if err != nil {
		return bench.System{}, nil, err
	}
	token, err := apiToken(cfgPath)
	if err != nil {
		return bench.System{}, nil, err
	}
	c, err := startChild(exec.CommandContext(ctx, self, "run", "--demo=false", "--config", cfgPath, "--data-dir", dir,
		"--broker-port=-1", "--listen", "127.0.0.1:0"), log)
	if err != nil {
		log.Close()
		return bench.System{}, nil, fmt.Errorf("cannot start %s system: %w", name, err)
	}
	stop := func() { c.stop(); log.Close() }
	addrs, err := c.await(30*time.Second, addrBroker, addrHTTP)
	if err != nil {
		stop()
		return bench.System{}, nil, fmt.Errorf("%s system did not start (%v); see %s", name, err, log.Name())
	}
	sys := bench.System{Name: name, Broker: addrs[addrBroker], API: "http://" + addrs[addrHTTP], Token: token}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := bench.Metrics(ctx, sys.API); err == nil {
			return sys, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return bench.System{}, nil, fmt.Errorf("%s system did not start; see %s", name, log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	f.rate = cmp.Or(f.rate, 20_000) // --rate: events per second
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
	rep.AddTo(r)
	out := f.reportDir("freshness")
	if err := r.Write(out); err != nil {
		return err
	}
	fmt.Println(rep.String())
	fmt.Printf("report in %s\n", out)
	return nil
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := pipeline.LoadConfig(*config)
	if err != nil {
		return err
	}
	rep := bench.NewReport("throughput", map[string]any{"stage": *stage, "events": *events, "config": *config,
		"canvases": len(cfg.Canvases), "ingest": cfg.Ingest, "model": cfg.Model, "trainer": cfg.Trainer})
	results, err := throughput.Stages(ctx, *stage, *events,
		throughput.IngestOptions{Canvases: cfg.Canvases, AllowedLateness: cfg.Ingest.AllowedLateness, MaxEventBytes: cfg.Ingest.MaxEventBytes, Progress: os.Stderr},
		throughput.TrainerOptions{Canvases: cfg.Canvases, Trainer: cfg.TrainerOptions(), Progress: os.Stderr})
	if err != nil {
		return err
	}
	table := throughput.Table(results)
	rep.AddTable(table)
	rep.Figure("stages", results)
	for _, r := range results {
		rep.AddPlot("throughput-"+r.Stage+".svg", r.Stage+" throughput over time", throughput.Plot(r))
		fmt.Printf("%s: %.0f records/s = %.2fx the raw consume rate (%.0f/s) and %.2fx its floor (%s, %.0f/s), same run\n",
			r.Stage, r.Rate, r.RawRatio, r.RawRate, r.FloorRatio, r.Floor, r.FloorRate)
	}
	dir := bench.ReportDir(*report, "throughput")
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Print("\n" + bench.MarkdownTable(table.Header, table.Rows))
	fmt.Printf("report in %s\n", dir)
	return nil
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
	fs.StringVar(&s.Mode, "scoring", "int8", "the replica's serve.scoring: int8 or exact")
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
	fs.StringVar(&o.Report, "report", "", "report directory (default bench-reports/latency-<time>)")
	config := fs.String("config", "", "unirec config whose serve.api_token_file/api_token_env is sent to a --target replica that requires it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.Token, err = apiToken(*config); err != nil {
		return err
	}
	if o.Rate <= 0 || o.K <= 0 || o.Duration <= 0 {
		return errors.New("--rate, --k and --duration must be positive")
	}
	o.StartReplica = func(ctx context.Context, deltas time.Duration) (string, func(), error) {
		return startBenchReplica(ctx, o, deltas)
	}
	return load.Latency(ctx, o)
}

// startBenchReplica starts `unirec bench replica` as a child process and
// returns the address it reports.
func startBenchReplica(ctx context.Context, o load.LatencyOptions, deltas time.Duration) (string, func(), error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("cannot find the unirec binary: %w", err)
	}
	args := append([]string{"bench", "replica", fmt.Sprint("--items=", o.World.Items), fmt.Sprint("--dim=", o.World.Dim),
		fmt.Sprint("--queries=", o.World.Queries), fmt.Sprint("--parallelism=", o.Parallelism), "--deltas=" + deltas.String(),
		fmt.Sprint("--delta-fraction=", o.Fraction)}, o.Scoring.Args()...)
	c, err := startChild(exec.CommandContext(ctx, exe, args...), os.Stderr)
	if err != nil {
		return "", nil, fmt.Errorf("cannot start the bench replica: %w", err)
	}
	addrs, err := c.await(10*time.Minute, addrHTTP)
	if err != nil {
		c.stop()
		return "", nil, fmt.Errorf("the bench replica did not start: %w", err)
	}
	return addrs[addrHTTP], c.stop, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
