package main

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

var faults = flag.Bool("faults", false, "run the long fault tests (make test-faults; or UNIREC_FAULTS=1)")

// needFaults skips a long fault test unless -faults or UNIREC_FAULTS asks.
func needFaults(t *testing.T) {
	t.Helper()
	if !*faults && os.Getenv("UNIREC_FAULTS") == "" {
		t.Skip("a long fault test: make test-faults (go test -faults, or UNIREC_FAULTS=1)")
	}
}

// startBrokerProc starts `unirec broker` on its data dir and port (-1: a
// free one) and returns the process and the address it reports.
func startBrokerProc(t *testing.T, cfg, port string, log *lockedBuffer) (*exec.Cmd, string) {
	t.Helper()
	c, err := bench.StartChild(exec.Command(unirecBin, "broker", "--config", cfg, "--port", port), log)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := c.Await(30*time.Second, bench.AddrBroker)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return c.Cmd, addrs[bench.AddrBroker]
}

// The embedded broker (`unirec broker --data-dir`) is killed with SIGKILL
// in the middle of the stream and restarted on the same data dir and
// port, while an independent franz-go client keeps producing events with
// ids and an ingest process keeps transacting. An oracle reading the
// examples topic read_committed finds every expected example exactly once
// and no dead letter.
func TestBrokerKill9IsExact(t *testing.T) {
	needFaults(t)
	dir := t.TempDir()
	bcfg := filepath.Join(dir, "broker.yaml")
	if err := os.WriteFile(bcfg, []byte("data_dir: "+filepath.Join(dir, "data")+"\nbroker:\n  event_partitions: 4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	blog := &lockedBuffer{}
	broker, addr := startBrokerProc(t, bcfg, "-1", blog)
	t.Cleanup(func() {
		broker.Process.Signal(os.Interrupt)
		broker.Wait()
		if t.Failed() {
			t.Logf("broker log:\n%s", blog.String())
		}
	})
	cfg := pipeline.DefaultConfig()
	cfg.EnsureDefaults()
	cfg.Kafka = stream.Plaintext(addr)
	cfg.Broker.EventPartitions = 4
	if err := pipeline.EnsureTopics(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	a := startIngestProc(t, killTestConfig(t, dir, addr, "ingest-a"))
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := synth.NewWorld(synth.Options{Seed: 7, Step: 20 * time.Millisecond})
	var requests [][]ingest.Event
	events := 0
	const total, killAt = 2000, 700
	var down time.Duration
	for i := 0; i < total; i++ {
		evs := w.Next()
		requests = append(requests, evs)
		produceRequest(t, cl, evs)
		events += len(evs)
		if i == killAt {
			streamtest.WaitFor(t, 60*time.Second, "ingest to commit events", func() bool {
				return a.metrics()["unirec_ingest_events_consumed_total"] >= 500
			})
			killed := time.Now()
			broker.Process.Kill()
			broker.Wait()
			_, port, _ := strings.Cut(addr, ":")
			var again string
			broker, again = startBrokerProc(t, bcfg, port, blog)
			down = time.Since(killed)
			if again != addr {
				t.Fatalf("the broker came back on %s, not %s", again, addr)
			}
		}
	}
	// Ingest may stop on the restarted broker (its transaction fenced,
	// the broker having aborted it): it exits and its supervisor starts it
	// again, which is part of what must stay exact.
	restarts := 0
	streamtest.WaitFor(t, 120*time.Second, "every event committed and every window closed", func() bool {
		if a.restartIfExited() {
			restarts++
		}
		return consumerCaughtUp(t, cl, "kill-test", cfg.Topics.Events) && pendingZero(a)
	})
	want := expectedExamples(requests)
	missing, twice, extra := checkExactlyOnce(t, want, readExamples(t, cfg))
	deadLetters := checkNoDeadLetters(t, cfg)
	m := a.metrics()
	t.Logf("%d events, %d expected examples: %d missing, %d more than once, %d unexpected, %d dead letters; broker down %s; ingest counted %v duplicates; ingest restarted %d times after exiting",
		events, len(want), missing, twice, extra, deadLetters, down.Round(time.Millisecond), m[`unirec_ingest_events_total{outcome="duplicate"}`], restarts)
}
