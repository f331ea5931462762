package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/unirec/unirec/bench/datasets"
)

// EvalRun is what `unirec bench eval` runs: the evaluation of EvalOptions
// on two fresh systems (the unified model and per-task isolated models),
// each a `unirec run` process of Exe on its own embedded broker. RunEval
// fills in Events, Systems, Reference, Topic and OnTraining.
type EvalRun struct {
	EvalOptions
	Dataset, Path string // the data set and where it is read from (datasets.Load)
	Config        string // extra unirec config of the systems (canvases, model)
	Token         string // the API token Config makes the systems require
	Exe           string // the unirec binary
	ReportDir     string
	Out           io.Writer // the tables and where the report is
}

// Validate says which of the evaluation's flags is out of range.
func (o EvalOptions) Validate() error {
	switch {
	case o.Cut <= 0 || o.Cut >= 1:
		return fmt.Errorf("--cut must be in (0, 1), got %v", o.Cut)
	case o.ValidationCut <= 0 || o.ValidationCut >= o.Cut:
		return fmt.Errorf("--validation-cut must be in (0, --cut=%v), got %v", o.Cut, o.ValidationCut)
	case o.Period != PeriodTest && o.Period != PeriodValidation:
		return fmt.Errorf("--period must be %s or %s, got %q", PeriodTest, PeriodValidation, o.Period)
	case o.LiveChunks < 1:
		return fmt.Errorf("--live-chunks must be at least 1, got %d", o.LiveChunks)
	}
	return nil
}

// RunEval loads the data set, starts the systems, evaluates them, writes
// the report to r.ReportDir and prints its tables to r.Out.
func RunEval(ctx context.Context, r EvalRun) error {
	if err := r.Validate(); err != nil {
		return err
	}
	evs, err := datasets.Load(r.Dataset, r.Path, true)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "unirec-eval")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	o := r.EvalOptions
	o.Events, o.Reference, o.Topic = evs, "unified", "unirec.events"
	for _, isolated := range []bool{false, true} {
		name := map[bool]string{false: "unified", true: "per-task"}[isolated]
		sys, stop, err := StartSystem(ctx, r.Exe, filepath.Join(work, name), name, isolated, r.Config, r.Token)
		if err != nil {
			return err
		}
		defer stop()
		o.Systems = append(o.Systems, sys)
	}
	rep := NewReport("eval", map[string]any{"dataset": r.Dataset, "period": o.Period, "cut": o.Cut, "validation_cut": o.ValidationCut,
		"live": o.Live, "live_chunks": o.LiveChunks, "k": o.K, "queries_per_task": o.QueriesPerTask,
		"auc_negatives": o.AUCNegatives, "events": len(evs), "config": r.Config, "als": o.ALS})
	auc, last := map[string]*Series{}, map[[2]string]TaskMetrics{}
	o.OnTraining = func(sys string, sec float64, tasks map[string]TaskMetrics) {
		for task, m := range tasks {
			last[[2]string{task, sys}] = m
			key := sys + " " + task
			if auc[key] == nil {
				auc[key] = &Series{Name: key}
			}
			auc[key].X = append(auc[key].X, float64(m.Examples))
			auc[key].Y = append(auc[key].Y, m.AUC)
		}
	}
	res, err := Evaluate(ctx, o)
	if err != nil {
		return err
	}
	return writeEval(rep, res, o, auc, last, r.ReportDir, r.Out)
}

// progressTable is the progressive validation of every system and task
// when it was last read, at the end of training (by task, then system).
func progressTable(last map[[2]string]TaskMetrics) Table {
	t := Table{Title: "Progressive validation at the end of training (each example scored before it is learned; AUC over the trainer's recent window, log loss over all)",
		Header: []string{"task", "system", "examples", "progressive AUC", "log loss"}}
	for _, k := range slices.SortedFunc(maps.Keys(last), func(a, b [2]string) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) }) {
		m := last[k]
		t.Rows = append(t.Rows, []string{k[0], k[1], fmt.Sprint(m.Examples), fmt.Sprintf("%.4f", m.AUC), fmt.Sprintf("%.4f", m.LogLoss)})
	}
	return t
}

// writeEval adds the evaluation's figures, plot and tables to rep, writes
// it to dir and prints the tables to out.
func writeEval(rep *Report, res EvalResult, o EvalOptions, auc map[string]*Series, last map[[2]string]TaskMetrics, dir string, out io.Writer) error {
	rep.Figure("trained_events", res.Train)
	rep.Figure("evaluated_period_events", res.Asked)
	rep.AddPlot("progressive-auc.svg", "Progressive AUC per task while training",
		LinePlot("Progressive AUC (windowed) per task", "examples trained in the task", "AUC", SortedSeries(auc)))
	chunks := 0
	if o.Live {
		chunks = o.LiveChunks
	}
	tables := append(EvalTables(res, o.K, o.Period, chunks), progressTable(last))
	for _, t := range tables {
		rep.AddTable(t)
	}
	rep.Figure("results", res.Summaries)
	rep.Figure("unified_minus", res.Versus)
	rep.Figure("unified_minus_ndcg", res.VersusNDCG)
	if o.Live {
		rep.Figure("live_minus_frozen", res.Freshness)
		rep.Figure("live_minus_frozen_ndcg", res.FreshnessNDCG)
	}
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s period: trained on %d events, asked about %d\n", o.Period, res.Train, res.Asked)
	for _, t := range tables {
		fmt.Fprint(out, "\n"+t.Title+"\n\n"+MarkdownTable(t.Header, t.Rows))
	}
	fmt.Fprintf(out, "report in %s\n", dir)
	return nil
}

// StartSystem starts `exe run --demo=false` in dir on ports it picks
// itself, with the model isolated per task or not and the extra config
// (a file, "" for none), and returns it once its API answers.
func StartSystem(ctx context.Context, exe, dir, name string, isolated bool, extra, token string) (System, func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return System{}, nil, err
	}
	cfgPath := filepath.Join(dir, "unirec.yaml")
	cfg := fmt.Sprintf("model:\n  isolated: %v\nsnapshot:\n  interval: 500ms\n", isolated)
	if extra != "" {
		b, err := os.ReadFile(extra)
		if err != nil {
			return System{}, nil, fmt.Errorf("cannot read --config: %w", err)
		}
		cfg = string(b) + "\n"
		if isolated {
			cfg = strings.Replace(cfg, "isolated: false", "isolated: true", 1)
		}
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return System{}, nil, err
	}
	log, err := os.Create(filepath.Join(dir, "unirec.log"))
	if err != nil {
		return System{}, nil, err
	}
	c, err := StartChild(exec.CommandContext(ctx, exe, "run", "--demo=false", "--config", cfgPath, "--data-dir", dir,
		"--broker-port=-1", "--listen", "127.0.0.1:0"), log)
	if err != nil {
		log.Close()
		return System{}, nil, fmt.Errorf("cannot start %s system: %w", name, err)
	}
	stop := func() { c.Stop(); log.Close() }
	addrs, err := c.Await(30*time.Second, AddrBroker, AddrHTTP)
	if err != nil {
		stop()
		return System{}, nil, fmt.Errorf("%s system did not start (%v); see %s", name, err, log.Name())
	}
	sys := System{Name: name, Broker: addrs[AddrBroker], API: "http://" + addrs[AddrHTTP], Token: token}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := Metrics(ctx, sys.API); err == nil {
			return sys, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return System{}, nil, fmt.Errorf("%s system did not start; see %s", name, log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
