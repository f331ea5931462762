package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/stream/streamtest"
)

// startProcess starts one unirec command as its own process.
func startProcess(t *testing.T, args ...string) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(unirecBin, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("unirec %v log:\n%s", args, log.String())
		}
	})
}

// Each stage runs as its own process against the brokers it is given, with
// the same binary and config format, and together they serve a model.
func TestStagesAsSeparateProcesses(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "stages.yaml")
	if err := os.WriteFile(cfg, []byte("snapshot:\n  interval: 300ms\ntrainer:\n  commit_interval: 300ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bport := freePort(t)
	broker := fmt.Sprintf("127.0.0.1:%d", bport)
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startProcess(t, "broker", "--config", cfg, "--port", fmt.Sprint(bport), "--data-dir", filepath.Join(dir, "b"))
	streamtest.WaitFor(t, 30*time.Second, "the broker to listen", func() bool {
		c, err := net.DialTimeout("tcp", broker, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	common := []string{"--config", cfg, "--brokers", broker}
	startProcess(t, append([]string{"ingest", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, common...)...)
	startProcess(t, append([]string{"train", "--data-dir", filepath.Join(dir, "t"), "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, common...)...)
	startProcess(t, append([]string{"serve", "--listen", api}, common...)...)
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
