package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/bench/synth"
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
	return cmdBenchServing(ctx, args)
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

func (f *benchFlags) reportDir(name string) string {
	if f.report != "" {
		return f.report
	}
	return filepath.Join("bench-reports", name+"-"+time.Now().UTC().Format("20060102-150405"))
}

func (f *benchFlags) client() stream.ClientOptions {
	return stream.ClientOptions{Brokers: strings.Split(f.brokers, ",")}
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
	w := synth.NewWorld(synth.Options{Seed: *seed, Start: now.Add(-time.Duration(*requests) * 100 * time.Millisecond), IDPrefix: runIDPrefix("produce", now)})
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
	evs, recs, err := loadDataset(*dataset, *path, false)
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
	empty, err := topicEmpty(ctx, cl, f.topic)
	if err != nil {
		return err
	}
	if !empty {
		fmt.Fprintf(os.Stderr, "warning: %s already holds records; ingest dead-letters events older than a partition's watermark as late, so replayed events before the newest ones there may be lost (replay into a fresh system or topic)\n", f.topic)
	}
	return nil
}

// loadDataset loads events (or raw records for jsonl).
// datasetFiles is where each downloadable data set lives inside the shared
// data directory, and what --path may name instead.
var datasetFiles = map[string]struct{ sub, what string }{
	"movielens":      {"movielens-small", "movielens-small directory (ratings.csv, movies.csv, tags.csv)"},
	"openbandit":     {filepath.Join("open-bandit", "random_men_men.csv"), "random_men_men.csv file"},
	"movietweetings": {"movietweetings-100k", "MovieTweetings snapshot directory (ratings.dat, movies.dat), e.g. snapshots/100K of github.com/sidooms/MovieTweetings"},
}

// datasetPath is where data set name (movielens or openbandit) is read
// from: --path as given, or the data set inside it when it is the shared
// data directory (holding movielens-small/ and open-bandit/), or inside
// ../shared/data next to the repository holding the working directory
// when --path is empty.
func datasetPath(name, path string) (string, error) {
	f := datasetFiles[name]
	if path == "" {
		dir, err := datasets.SharedDataDir(".")
		if err != nil {
			return "", fmt.Errorf("cannot find the %s data set: %v; pass --path with the shared data directory (holding %s) or the %s", name, err, f.sub, f.what)
		}
		return filepath.Join(dir, f.sub), nil
	}
	if _, err := os.Stat(filepath.Join(path, f.sub)); err == nil {
		return filepath.Join(path, f.sub), nil
	}
	return path, nil
}

func loadDataset(name, path string, rebase bool) ([]ingest.Event, []bench.Record, error) {
	if _, ok := datasetFiles[name]; ok {
		p, err := datasetPath(name, path)
		if err != nil {
			return nil, nil, err
		}
		path = p
	}
	now := time.Time{}
	if rebase || name == "synth" {
		now = time.Now().UTC()
	}
	switch name {
	case "movielens":
		ml, err := datasets.LoadMovieLens(path)
		if err != nil {
			return nil, nil, err
		}
		return ml.Events(now), nil, nil
	case "movietweetings":
		mt, err := datasets.LoadMovieTweetings(path)
		if err != nil {
			return nil, nil, err
		}
		return mt.Events(now), nil, nil
	case "openbandit":
		rows, err := datasets.LoadOpenBandit(path)
		if err != nil {
			return nil, nil, err
		}
		evs := datasets.OpenBanditEvents(rows)
		if rebase && len(evs) > 0 {
			shift := now.Sub(evs[len(evs)-1].Time)
			for i := range evs {
				evs[i].Time = evs[i].Time.Add(shift)
			}
		}
		return evs, nil, nil
	case "synth":
		w := synth.NewWorld(synth.Options{Seed: 1, Start: now.Add(-synthRequests * 100 * time.Millisecond), IDPrefix: runIDPrefix("synth", now)})
		var evs []ingest.Event
		for i := 0; i < synthRequests; i++ {
			evs = append(evs, w.Next()...)
		}
		return evs, nil, nil
	case "jsonl":
		if path == "" {
			return nil, nil, fmt.Errorf("--path is required for --dataset jsonl")
		}
		recs, err := bench.ReadJSONLFile(path)
		return nil, recs, err
	}
	return nil, nil, fmt.Errorf("--dataset must be movielens, movietweetings, openbandit, synth or jsonl, got %q", name)
}

// synthRequests is the size of the synth data set: a planted-truth world's
// requests, 100 ms apart.
const synthRequests = 6000

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
	rep.Figure("events", res.Records)
	rep.Figure("seconds", res.Elapsed.Seconds())
	rep.Figure("events_per_second", res.Rate)
	rep.AddPlot("throughput.svg", "Events produced per second", bench.RatePlot("Events produced per second", "events", res.Timeline))
	rep.AddTable(bench.Table{Title: "Production", Header: []string{"events", "seconds", "events/s"},
		Rows: [][]string{{fmt.Sprint(res.Records), fmt.Sprintf("%.2f", res.Elapsed.Seconds()), fmt.Sprintf("%.0f", res.Rate)}}})
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
	evs, _, err := loadDataset(*dataset, *path, true)
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
		bench.LinePlot("Progressive AUC (windowed) per task", "examples trained in the task", "AUC", sortedSeries(auc)))
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

func sortedSeries(m map[string]*bench.Series) []bench.Series {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]bench.Series, len(keys))
	for i, k := range keys {
		out[i] = *m[k]
	}
	return out
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
	base, err := pickPorts(2)
	if err != nil {
		return bench.System{}, nil, err
	}
	bport, aport := base, base+1
	self, err := os.Executable()
	if err != nil {
		return bench.System{}, nil, err
	}
	log, err := os.Create(filepath.Join(dir, "unirec.log"))
	if err != nil {
		return bench.System{}, nil, err
	}
	cmd := exec.CommandContext(ctx, self, "run", "--demo=false", "--config", cfgPath, "--data-dir", dir,
		"--broker-port", fmt.Sprint(bport), "--listen", fmt.Sprintf("127.0.0.1:%d", aport))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return bench.System{}, nil, fmt.Errorf("cannot start %s system: %w", name, err)
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); cmd.Wait(); log.Close() }
	token, err := apiToken(cfgPath)
	if err != nil {
		return bench.System{}, nil, err
	}
	sys := bench.System{Name: name, Broker: fmt.Sprintf("127.0.0.1:%d", bport), API: fmt.Sprintf("http://127.0.0.1:%d", aport), Token: token}
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
	cfg, err := LoadConfig(path)
	if err != nil {
		return "", err
	}
	tok, err := cfg.Serve.APIToken()
	return string(tok), err
}
