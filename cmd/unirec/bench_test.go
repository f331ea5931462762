package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func checkReport(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"report.md", "report.json"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || len(b) == 0 {
			t.Errorf("report %s missing or empty: %v", f, err)
		}
	}
}

// Smoke test: produce and replay reach a running system's ingest.
func TestBenchProduceAndReplay(t *testing.T) {
	s := startSystem(t, t.TempDir(), "--demo=false")
	rep := t.TempDir()
	runBench(t, "produce", "--brokers", s.broker, "--requests", "50", "--report", filepath.Join(rep, "p"))
	checkReport(t, filepath.Join(rep, "p"))
	lines := `{"event_id":"j-1","time":"2026-11-27T10:00:00Z","canvas":"search","action":"click","item_id":"m-1","context":{"user_id":"u","query":"q"}}
{"event_id":"j-2","time":"2026-11-27T10:00:01Z","canvas":"nope","action":"click","item_id":"m-1","context":{"user_id":"u"}}
`
	path := filepath.Join(rep, "events.jsonl")
	os.WriteFile(path, []byte(lines), 0o644)
	out := runBench(t, "replay", "--brokers", s.broker, "--dataset", "jsonl", "--path", path, "--speed", "100", "--report", filepath.Join(rep, "r"))
	if !strings.Contains(out, "2 events") {
		t.Errorf("replay output: %s", out)
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
	for _, want := range []string{"| search | unified |", "| notifications | per-task |", "| category_exploration | popularity |"} {
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
	checkReport(t, rep)
	if !strings.Contains(out, "freshness over") {
		t.Errorf("freshness output: %s", out)
	}
}
