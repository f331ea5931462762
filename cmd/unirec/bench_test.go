package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/throughput"
	"github.com/unirec/unirec/stream"
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
	waitFor(t, 30*time.Second, "both produce runs to be consumed", func() bool {
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
	waitFor(t, 30*time.Second, "the replayed bad event to be dead-lettered", func() bool {
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
	if !strings.Contains(out, "freshness over") {
		t.Errorf("freshness output: %s", out)
	}
}

// Smoke test: bench throughput measures both stages on a few thousand
// records and writes positive rates, ratios and plots.
func TestBenchThroughputSmoke(t *testing.T) {
	rep := filepath.Join(t.TempDir(), "throughput")
	out := runBench(t, "throughput", "--events", "3000", "--report", rep)
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
		if r.Records != 3000 || r.Rate <= 0 || r.RawRate <= 0 || r.FloorRate <= 0 || r.RawRatio <= 0 || r.VmHWM == 0 || r.PeakHeap == 0 {
			t.Errorf("%s: %+v", r.Stage, r)
		}
	}
	if !strings.Contains(out, "| ingest | 3000 |") || !strings.Contains(out, "| trainer | 3000 |") {
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

// topicEmpty: a missing topic is empty, a produced one is not.
func TestTopicEmptyMissingTopic(t *testing.T) {
	br, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	cl, err := kgo.NewClient(stream.ClientOptions{Brokers: []string{br.Addr()}}.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if empty, err := topicEmpty(ctx, cl, "missing"); !empty || err != nil {
		t.Errorf("missing topic: empty %v, err %v; want empty, no error", empty, err)
	}
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "used", Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	if empty, err := topicEmpty(ctx, cl, "used"); !empty || err != nil {
		t.Errorf("new topic: empty %v, err %v; want empty", empty, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "used", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if empty, err := topicEmpty(ctx, cl, "used"); empty || err != nil {
		t.Errorf("used topic: empty %v, err %v; want not empty", empty, err)
	}
}

// --path may name the shared data directory or the data set itself; without
// it, a working directory outside a repository next to ../shared/data gets
// an error saying what to pass.
func TestDatasetPath(t *testing.T) {
	data := t.TempDir()
	os.MkdirAll(filepath.Join(data, "movielens-small"), 0o755)
	os.MkdirAll(filepath.Join(data, "open-bandit"), 0o755)
	os.WriteFile(filepath.Join(data, "open-bandit", "random_men_men.csv"), nil, 0o644)
	for _, c := range []struct{ name, path, want string }{
		{"movielens", data, filepath.Join(data, "movielens-small")},
		{"movielens", filepath.Join(data, "movielens-small"), filepath.Join(data, "movielens-small")},
		{"openbandit", data, filepath.Join(data, "open-bandit", "random_men_men.csv")},
		{"openbandit", "/some/file.csv", "/some/file.csv"},
	} {
		if got, err := datasetPath(c.name, c.path); err != nil || got != c.want {
			t.Errorf("datasetPath(%s, %s) = %q, %v; want %q", c.name, c.path, got, err, c.want)
		}
	}
	repo := t.TempDir() // a repository with no ../shared/data next to it
	os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644)
	t.Chdir(repo)
	_, err := datasetPath("movielens", "")
	if err == nil || !strings.Contains(err.Error(), "pass --path with the shared data directory") {
		t.Errorf("got %v, want an error saying what --path takes", err)
	}
}
