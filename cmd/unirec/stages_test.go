package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/stream/streamtest"
)

// startProcess starts one unirec command as its own process and returns
// the address of kind (bench.AddrBroker, bench.AddrHTTP) it reports.
func startProcess(t *testing.T, kind string, args ...string) string {
	t.Helper()
	var log lockedBuffer
	c, err := bench.StartChild(exec.Command(unirecBin, args...), &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("unirec %v log:\n%s", args, log.String())
		}
	})
	addrs, err := c.Await(30*time.Second, kind)
	if err != nil {
		t.Fatalf("unirec %v: %v\n%s", args, err, log.String())
	}
	return addrs[kind]
}

// testKey writes a random snapshot key file (mode 0600) in dir, as an
// operator would for separate processes, and returns its path.
func testKey(t *testing.T, dir string) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	path := filepath.Join(dir, "snapshot.key")
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Each stage runs as its own process against the brokers it is given, with
// the same binary and config format, and together they serve a model.
func TestStagesAsSeparateProcesses(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "stages.yaml")
	if err := os.WriteFile(cfg, []byte("snapshot:\n  interval: 300ms\n  hmac_key_file: "+testKey(t, dir)+"\ntrainer:\n  commit_interval: 300ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broker := startProcess(t, bench.AddrBroker, "broker", "--config", cfg, "--port=-1", "--data-dir", filepath.Join(dir, "b"))
	common := []string{"--config", cfg, "--brokers", broker}
	startProcess(t, bench.AddrHTTP, append([]string{"ingest", "--listen", "127.0.0.1:0"}, common...)...)
	startProcess(t, bench.AddrHTTP, append([]string{"train", "--data-dir", filepath.Join(dir, "t"), "--listen", "127.0.0.1:0"}, common...)...)
	api := startProcess(t, bench.AddrHTTP, append([]string{"serve", "--listen", "127.0.0.1:0"}, common...)...)
	s := &system{broker: broker, api: api}
	w := synth.NewWorld(synth.Options{Seed: 11, Start: time.Now().Add(-time.Hour), Step: 20 * time.Millisecond})
	produceWorld(t, broker, w, 3000)
	streamtest.WaitFor(t, 2*time.Minute, "the replica process to serve a model", func() bool { return s.modelApplied(t) > 10000 })
	ctx, _ := w.Query("search", 0)
	code, resp, raw := s.recommend(t, map[string]any{"use_case": "search", "context": ctx, "k": 10})
	if code != 200 || resp.Model.Version == 0 || len(resp.Items) != 10 {
		t.Fatalf("got %d %s, want 10 items from a model version", code, raw)
	}
}
