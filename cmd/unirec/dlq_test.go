package main

import (
	"github.com/unirec/unirec/stream/streamtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A dead letter can be inspected, fixed in the JSON-lines file and
// re-injected; the fixed event then becomes an example.
func TestDLQInspectFixReplay(t *testing.T) {
	s := startSystem(t, t.TempDir(), "--demo=false")
	bad := `{"event_id":"d-1","time":"2026-11-27T10:00:00Z","canvas":"search","action":"click","item_id":"m-1","context":{"user_id":"u-1"}}`
	cmd := exec.Command(unirecBin, "bench", "replay", "--brokers", s.broker, "--dataset", "jsonl", "--path", writeFile(t, bad+"\n"), "--report", t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	streamtest.WaitFor(t, 30*time.Second, "the dead letter", func() bool {
		return s.metric(t, `unirec_ingest_dead_letters_total{reason="missing_field"}`) == 1
	})
	dump := filepath.Join(t.TempDir(), "dlq.jsonl")
	out, err := exec.Command(unirecBin, "dlq", "inspect", "--brokers", s.broker, "--reason", "missing_field", "--out", dump).CombinedOutput()
	if err != nil {
		t.Fatalf("dlq inspect: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(dump)
	if !strings.Contains(string(b), `"reason":"missing_field"`) || !strings.Contains(string(b), "context.query is required") {
		t.Fatalf("dlq inspect wrote %s", b)
	}
	fixed := strings.Replace(string(b), `"user_id":"u-1"`, `"user_id":"u-1","query":"space"`, 1)
	os.WriteFile(dump, []byte(fixed), 0o644)
	if out, err := exec.Command(unirecBin, "dlq", "replay", "--brokers", s.broker, "--in", dump).CombinedOutput(); err != nil {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	streamtest.WaitFor(t, 30*time.Second, "the fixed event to become an example", func() bool {
		return s.metric(t, `unirec_ingest_examples_total{task="search",label="positive"}`) == 1
	})
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unirec status summarises the cluster and the processes it is pointed
// at, each use case of a replica with its version, staleness and policy;
// it asks the replica with the API token of its config.
func TestStatusCommand(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, "status-cli-api-token-0123\n")
	serveYAML := "serve:\n  api_token_file: " + token + "\n  use_cases:\n" +
		"    - {name: search}\n    - {name: notifications, updates: interval, update_interval: 1h, max_staleness: 2h, on_stale: fallback}\n"
	s := startSystemConfig(t, dir, serveYAML)
	streamtest.WaitFor(t, 60*time.Second, "a model", func() bool { return s.metric(t, "unirec_serve_model_version") > 0 })
	status := func(config string) string {
		t.Helper()
		out, err := exec.Command(unirecBin, "status", "--config", config, "--brokers", s.broker, "--processes", "http://"+s.api).CombinedOutput()
		if err != nil {
			t.Fatalf("unirec status: %v\n%s", err, out)
		}
		return string(out)
	}
	out := status(writeFile(t, serveYAML))
	for _, want := range []string{"topic unirec.events", "ingest lag", "serving version", "trainer:",
		"use case notifications  version ", "policy interval 1h0m0s, max staleness 2h0m0s, on stale: fallback", "use case search"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if out := status(writeFile(t, "{}\n")); !strings.Contains(out, "serving: needs an API token (pass --config") {
		t.Errorf("status without the API token:\n%s", out)
	}
	if out := status(writeFile(t, "serve:\n  api_token_file: "+writeFile(t, "not-the-replicas-token-0123\n")+"\n")); !strings.Contains(out, "refuses the API token of --config") {
		t.Errorf("status with a wrong API token:\n%s", out)
	}
}
