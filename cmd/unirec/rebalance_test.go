package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// stop stops the process gracefully (it leaves the group) and waits.
func (p *ingestProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	<-p.exited
	fmt.Fprintf(p.log, "--- stopped (left the group) ---\n")
}

// A rebalance storm: four ingest processes of one group join, leave
// gracefully and die by SIGKILL, one change every 200 requests, while an
// independent client produces events with ids to the 4-partition events
// topic. Every partition moves several times with its join state and
// dedupe set in the middle of transactions; the oracle reading the
// examples topic read_committed finds every expected example exactly once
// and no dead letter.
func TestIngestRebalanceStormIsExact(t *testing.T) {
	needFaults(t)
	dir := t.TempDir()
	b, err := stream.StartBroker(stream.BrokerOptions{Partitions: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := pipeline.DefaultConfig()
	cfg.EnsureDefaults()
	cfg.Kafka = stream.Plaintext(b.Addr())
	if err := pipeline.EnsureTopics(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	procs := map[string]*ingestProc{}
	live := map[string]bool{}
	join := func(name string) {
		if p := procs[name]; p != nil {
			p.start()
		} else {
			procs[name] = startIngestProc(t, killTestConfig(t, dir, b.Addr(), "ingest-"+name))
		}
		live[name] = true
	}
	join("a")
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	storm := map[int]func(){
		200:  func() { join("b") },
		400:  func() { join("c") },
		600:  func() { procs["b"].stop(); live["b"] = false },
		800:  func() { join("d") },
		1000: func() { procs["c"].kill9AndRestart() },
		1200: func() { join("b") },
		1400: func() { procs["d"].stop(); live["d"] = false },
		1600: func() { procs["a"].kill9AndRestart() },
		1800: func() { join("d") },
	}
	w := synth.NewWorld(synth.Options{Seed: 11, Step: 20 * time.Millisecond})
	var requests [][]ingest.Event
	events := 0
	var changes []string
	for i := 0; i < 2000; i++ {
		evs := w.Next()
		requests = append(requests, evs)
		produceRequest(t, cl, evs)
		events += len(evs)
		if act := storm[i]; act != nil {
			act()
			var up []string
			for _, n := range []string{"a", "b", "c", "d"} {
				if live[n] {
					up = append(up, n)
				}
			}
			changes = append(changes, fmt.Sprintf("%d:%s", i, strings.Join(up, "")))
		}
	}
	var running []*ingestProc
	for n, p := range procs {
		if live[n] {
			running = append(running, p)
		}
	}
	streamtest.WaitFor(t, 180*time.Second, "every event committed and every window closed", func() bool {
		return consumerCaughtUp(t, cl, "kill-test", cfg.Topics.Events) && pendingZero(running...)
	})
	consumed := map[string]float64{} // since each member's last start
	for n, p := range procs {
		consumed[n] = p.metrics()["unirec_ingest_events_consumed_total"]
		if consumed[n] == 0 {
			t.Errorf("member %s consumed nothing since its last start: the storm did not move partitions to it", n)
		}
	}
	want := expectedExamples(requests)
	missing, twice, extra := checkExactlyOnce(t, want, readExamples(t, cfg))
	deadLetters := checkNoDeadLetters(t, cfg)
	t.Logf("%d events, %d expected examples through 9 membership changes (request:members up %v): events consumed per member since its last start %v; %d missing, %d more than once, %d unexpected, %d dead letters",
		events, len(want), changes, consumed, missing, twice, extra, deadLetters)
}
