package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/throughput"
	"github.com/unirec/unirec/stream/streamtest"
)

// runBench runs `unirec bench args...` and returns its output.
func runBench(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(unirecBin, append([]string{"bench"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("unirec bench %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// checkReport checks that dir holds report.md, report.json and the plots.
func checkReport(t *testing.T, dir string, plots ...string) {
	t.Helper()
	for _, f := range append([]string{"report.md", "report.json"}, plots...) {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(b) == 0 {
			t.Errorf("report %s missing or empty: %v", f, err)
		}
	}
}

// Smoke test: produce and replay reach a running system's ingest; replay
// warns that the topic already holds records.
func TestBenchProduceAndReplay(t *testing.T) {
	s := startSystem(t, t.TempDir(), "--demo=false")
	rep := t.TempDir()
	out := runBench(t, "produce", "--brokers", s.broker, "--requests", "50", "--report", filepath.Join(rep, "p"))
	checkReport(t, filepath.Join(rep, "p"))
	// A second run's events have ids of their own: none is dropped as a
	// duplicate of the first run's (they once were all e-0, e-1, ...).
	var produced float64
	outLines := strings.Split(strings.TrimSpace(out), "\n")
	if _, err := fmt.Sscanf(outLines[len(outLines)-1], "%g events", &produced); err != nil || produced == 0 {
		t.Fatalf("cannot read the event count of: %s", out)
	}
	runBench(t, "produce", "--brokers", s.broker, "--requests", "50", "--report", filepath.Join(rep, "p2"))
	streamtest.WaitFor(t, 30*time.Second, "both produce runs to be consumed", func() bool {
		return s.metric(t, "unirec_ingest_events_consumed_total") == 2*produced
	})
	if d := s.metric(t, `unirec_ingest_events_total{outcome="duplicate"}`); d != 0 {
		t.Errorf("%v events of a second bench produce were dropped as duplicates", d)
	}
	lines := `{"event_id":"j-1","time":"2026-11-27T10:00:00Z","canvas":"search","action":"click","item_id":"m-1","context":{"user_id":"u","query":"q"}}
{"event_id":"j-2","time":"2026-11-27T10:00:01Z","canvas":"nope","action":"click","item_id":"m-1","context":{"user_id":"u"}}
`
	path := filepath.Join(rep, "events.jsonl")
	os.WriteFile(path, []byte(lines), 0o644)
	out = runBench(t, "replay", "--brokers", s.broker, "--dataset", "jsonl", "--path", path, "--speed", "100", "--report", filepath.Join(rep, "r"))
	if !strings.Contains(out, "2 events") || !strings.Contains(out, "already holds records") {
		t.Errorf("replay output (want 2 events and a warning that the topic holds the produced ones): %s", out)
	}
	streamtest.WaitFor(t, 30*time.Second, "the replayed bad event to be dead-lettered", func() bool {
		return s.metric(t, `unirec_ingest_dead_letters_total{reason="unknown_canvas"}`) == 1
	})
}

// Smoke test: eval on the synthetic world trains both systems and scores
// unified, per-task and popularity on every task, sending the API token
// the systems' config requires.
func TestBenchEvalSynth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two systems")
	}
	rep := filepath.Join(t.TempDir(), "eval")
	// The systems require an API token; eval asks them with the one of --config.
	token := writeFile(t, "eval-api-token-0123456789\n")
	config := writeFile(t, "model:\n  isolated: false\nsnapshot:\n  interval: 500ms\nserve:\n  api_token_file: "+token+"\n")
	out := runBench(t, "eval", "--dataset", "synth", "--queries", "30", "--report", rep, "--config", config)
	checkReport(t, rep)
	for _, want := range []string{"| search | unified |", "| notifications | per-task |", "| category_exploration | popularity |",
		"sampled AUC", "| search | per-task |", "| notifications | popularity |"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
}

// Smoke test: the freshness benchmark runs the whole pipeline and reports.
func TestBenchFreshnessSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole pipeline")
	}
	rep := filepath.Join(t.TempDir(), "fresh")
	out := runBench(t, "freshness", "--rate", "500", "--warmup", "2s", "--duration", "2s", "--request-rate", "20", "--report", rep)
	checkReport(t, rep, "freshness-cdf.svg", "latency-cdf.svg", "apply-publish-cdf.svg")
	if !strings.Contains(out, "freshness over") || !strings.Contains(out, "produced -> in a published snapshot") {
		t.Errorf("freshness output: %s", out)
	}
}

// Smoke test: bench throughput measures both stages on a few thousand
// records, on the one CPU --cpus asks for, and writes positive rates,
// ratios and plots.
func TestBenchThroughputSmoke(t *testing.T) {
	rep := filepath.Join(t.TempDir(), "throughput")
	out := runBench(t, "throughput", "--events", "3000", "--cpus", "1", "--report", rep)
	checkReport(t, rep, "throughput-ingest.svg", "throughput-trainer.svg")
	var got struct {
		Figures struct {
			Stages []throughput.Result `json:"stages"`
		} `json:"figures"`
	}
	readJSON(t, filepath.Join(rep, "report.json"), &got)
	if len(got.Figures.Stages) != 2 {
		t.Fatalf("%d stages in the report, want ingest and trainer\n%s", len(got.Figures.Stages), out)
	}
	for _, r := range got.Figures.Stages {
		if r.Records != 3000 || r.CPUs != 1 || r.Rate <= 0 || r.RawRate <= 0 || r.FloorRate <= 0 || r.RawRatio <= 0 || r.VmHWM == 0 || r.PeakHeap == 0 {
			t.Errorf("%s: %+v", r.Stage, r)
		}
	}
	if !strings.Contains(out, "| ingest | 1 | 3000 |") || !strings.Contains(out, "| trainer | 1 | 3000 |") {
		t.Errorf("throughput output lacks the table:\n%s", out)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("cannot decode %s: %v", path, err)
	}
}
