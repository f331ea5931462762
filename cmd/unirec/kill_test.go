package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// ingestProc is one `unirec ingest` process of a test.
type ingestProc struct {
	t      *testing.T
	args   []string
	listen string // the HTTP address its current run reported
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run has exited
	log    *lockedBuffer
}

func startIngestProc(t *testing.T, cfg string) *ingestProc {
	t.Helper()
	p := &ingestProc{t: t, log: &lockedBuffer{}}
	p.args = []string{"ingest", "--config", cfg, "--listen", "127.0.0.1:0"}
	p.start()
	t.Cleanup(func() {
		p.cmd.Process.Signal(os.Interrupt)
		<-p.exited
		if t.Failed() {
			t.Logf("unirec %v log:\n%s", p.args, p.log.String())
		}
	})
	return p
}

// start starts the process and waits for the HTTP address it reports.
func (p *ingestProc) start() {
	c, err := bench.StartChild(exec.Command(unirecBin, p.args...), p.log)
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd, p.exited = c.Cmd, make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(p.cmd, p.exited)
	addrs, err := c.Await(30*time.Second, bench.AddrHTTP)
	if err != nil {
		p.t.Fatalf("unirec %v: %v\n%s", p.args, err, p.log.String())
	}
	p.listen = addrs[bench.AddrHTTP]
}

// kill9AndRestart kills the process with SIGKILL, waits for it and starts it again
// with the same config (and so the same transactional id).
func (p *ingestProc) kill9AndRestart() {
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	<-p.exited
	fmt.Fprintf(p.log, "--- killed with SIGKILL, restarting ---\n")
	p.start()
}

// restartIfExited starts the process again when it has exited by itself,
// as the shipped supervisors do (systemd Restart=always, compose
// restart: on-failure, a Kubernetes Deployment), and says whether it did.
func (p *ingestProc) restartIfExited() bool {
	select {
	case <-p.exited:
	default:
		return false
	}
	fmt.Fprintf(p.log, "--- exited by itself (%v), restarted as a supervisor would ---\n", p.cmd.ProcessState)
	p.start()
	return true
}

// metrics scrapes the process' /metrics; nil while it does not answer.
func (p *ingestProc) metrics() map[string]float64 {
	resp, err := http.Get("http://" + p.listen + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if ok && strings.HasPrefix(name, "unirec_ingest_") {
			var f float64
			fmt.Sscan(v, &f)
			out[name] = f
		}
	}
	return out
}

// expectedExample is what the join must emit for one event id.
type expectedExample struct {
	label, weight float32
}

// expectedExamples labels synth requests as the join must: each click and
// each play is a positive of weight 1 (play tops a click up to its weight
// 2), each impression without a click a negative of weight 1; an engaged
// impression has no example of its own.
func expectedExamples(requests [][]ingest.Event) map[string]expectedExample {
	want := map[string]expectedExample{}
	for _, evs := range requests {
		clicked := map[string]bool{}
		for _, e := range evs {
			if e.Action != ingest.ActionImpression {
				clicked[e.ItemID] = true
				want[e.EventID] = expectedExample{1, 1}
			}
		}
		for _, e := range evs {
			if e.Action == ingest.ActionImpression && !clicked[e.ItemID] {
				want[e.EventID] = expectedExample{0, 1}
			}
		}
	}
	return want
}

// killTestConfig writes the config of one ingest process: short windows,
// a short session timeout, a stable transactional id.
func killTestConfig(t *testing.T, dir, broker, txID string) string {
	t.Helper()
	canvases := ingest.DefaultCanvases()
	for i := range canvases {
		canvases[i].AttributionWindow = 2 * time.Second
	}
	cfg := map[string]any{
		"kafka":  map[string]any{"brokers": []string{broker}},
		"broker": map[string]any{"event_partitions": 4},
		"ingest": map[string]any{"group": "kill-test", "transactional_id": txID, "changelog": "unirec.ingest.changelog",
			"allowed_lateness": "2s", "session_timeout": "6s"},
		"canvases": canvases,
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, txID+".yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Two ingest processes share a 4-partition events topic; one is killed
// with SIGKILL in the middle of the stream and restarted. The examples topic
// (read committed) must hold every expected example exactly once, events
// re-sent after the crash must be caught as duplicates (the de-duplication
// set is in the changelog), and each live process' accounting balances.
func TestIngestExactlyOnceAcrossKill9(t *testing.T) {
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
	a := startIngestProc(t, killTestConfig(t, dir, b.Addr(), "ingest-a"))
	var c *ingestProc

	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	w := synth.NewWorld(synth.Options{Seed: 5, Step: 20 * time.Millisecond})
	var requests [][]ingest.Event
	const total, secondAt, killAt = 3000, 300, 1000
	events := 0
	for i := 0; i < total; i++ {
		evs := w.Next()
		requests = append(requests, evs)
		produceRequest(t, cl, evs)
		events += len(evs)
		switch i {
		case secondAt: // a owns every partition; b joins and takes half
			streamtest.WaitFor(t, 60*time.Second, "process a to commit events", func() bool {
				return a.metrics()["unirec_ingest_events_consumed_total"] > 0
			})
			c = startIngestProc(t, killTestConfig(t, dir, b.Addr(), "ingest-b"))
		case killAt: // both process; a dies in the middle of the stream
			streamtest.WaitFor(t, 60*time.Second, "both processes to commit events", func() bool {
				return c.metrics()["unirec_ingest_events_consumed_total"] > 0 && a.metrics()["unirec_ingest_events_consumed_total"] >= 1000
			})
			a.kill9AndRestart()
		}
	}
	// Re-send the first 30 requests: every one of them is a duplicate,
	// whichever process now owns its partition.
	dups := 0
	for _, evs := range requests[:30] {
		produceRequest(t, cl, evs)
		dups += len(evs)
	}
	events += dups

	want := expectedExamples(requests)
	t.Cleanup(func() {
		if t.Failed() { // goroutine dumps of both processes go to their logs
			a.cmd.Process.Signal(syscall.SIGQUIT)
			c.cmd.Process.Signal(syscall.SIGQUIT)
		}
	})
	streamtest.WaitFor(t, 90*time.Second, "every event committed and every window closed", func() bool {
		return consumerCaughtUp(t, cl, "kill-test", cfg.Topics.Events) && pendingZero(a, c)
	})
	checkExactlyOnce(t, want, readExamples(t, cfg))
	var duplicates float64
	for name, p := range map[string]*ingestProc{"a (restarted)": a, "b": c} {
		m := p.metrics()
		in := m["unirec_ingest_events_consumed_total"] + m["unirec_ingest_pending_restored_total"]
		out := m["unirec_ingest_pending_released_total"] + m["unirec_ingest_pending_impressions"]
		for _, o := range []string{"example", "joined", "duplicate", "sampled_out", "dead_letter"} {
			out += m[fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o)]
		}
		if in != out {
			t.Errorf("process %s: accounting does not balance: consumed+restored %v, outcomes+released+pending %v (%v)", name, in, out, m)
		}
		if dl := m[`unirec_ingest_events_total{outcome="dead_letter"}`]; dl != 0 {
			t.Errorf("process %s: %v dead letters", name, dl)
		}
		duplicates += m[`unirec_ingest_events_total{outcome="duplicate"}`]
	}
	if duplicates != float64(dups) {
		t.Errorf("live processes counted %v duplicates, want the %d events sent twice", duplicates, dups)
		stream.ReadPartition(context.Background(), cfg.Kafka, cfg.Topics.DeadLetters, 0, func(r *kgo.Record) error {
			t.Logf("dead letter %.40s: %s (%s)", r.Value, stream.Header(r, stream.HeaderReason), stream.Header(r, stream.HeaderSource))
			return nil
		})
	}
	t.Logf("%d events (%d sent twice), %d examples, each exactly once across a SIGKILL", events, dups, len(want))
}

// produceRequest produces the events of one request keyed by its
// request id, as the documented producer contract says.
func produceRequest(t *testing.T, cl *kgo.Client, evs []ingest.Event) {
	t.Helper()
	recs := make([]*kgo.Record, 0, len(evs))
	for _, e := range evs {
		v, _ := json.Marshal(e)
		recs = append(recs, &kgo.Record{Key: []byte(e.RequestID), Value: v})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// checkExactlyOnce fails t for every example got that want does not
// expect, holds more than once, or labels or weighs otherwise, and for
// every expected one missing; it returns how many were missing, more than
// once and unexpected.
func checkExactlyOnce(t *testing.T, want map[string]expectedExample, got examplesRead) (missing, twice, extra int) {
	t.Helper()
	for id, n := range got.count {
		if _, ok := want[id]; !ok {
			extra++
			t.Errorf("unexpected example from event %s", id)
		} else if n != 1 {
			twice++
			t.Errorf("event %s has %d examples, want exactly 1 (last %+v, offsets %v)", id, n, got.ex[id], got.offsets[id])
		}
	}
	for id, ex := range want {
		if got.count[id] == 0 {
			missing++
			t.Errorf("no example from event %s", id)
		} else if got.ex[id] != ex {
			t.Errorf("event %s: label %v weight %v, want %+v", id, got.ex[id].label, got.ex[id].weight, ex)
		}
	}
	return missing, twice, extra
}

// checkNoDeadLetters fails t for every record on the dead-letters topic
// and returns how many there were.
func checkNoDeadLetters(t *testing.T, cfg pipeline.Config) int {
	t.Helper()
	n := 0
	if err := stream.ReadPartition(context.Background(), cfg.Kafka, cfg.Topics.DeadLetters, 0, func(r *kgo.Record) error {
		n++
		t.Errorf("dead letter %.60s: %s", r.Value, stream.Header(r, stream.HeaderReason))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// consumerCaughtUp says whether the group committed the end offset of every
// partition of topic.
func consumerCaughtUp(t *testing.T, cl *kgo.Client, group, topic string) bool {
	t.Helper()
	adm := kadm.NewClient(cl)
	ctx := context.Background()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	done := true
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, o.Partition)
		done = done && ok && c.At == o.Offset
	})
	return done
}

func pendingZero(ps ...*ingestProc) bool {
	for _, p := range ps {
		m := p.metrics()
		if m == nil || m["unirec_ingest_pending_impressions"] != 0 {
			return false
		}
	}
	return true
}

type examplesRead struct {
	count   map[string]int
	ex      map[string]expectedExample
	offsets map[string][]int64
}

// readExamples reads the examples topic, read committed, to its end.
func readExamples(t *testing.T, cfg pipeline.Config) examplesRead {
	t.Helper()
	out := examplesRead{count: map[string]int{}, ex: map[string]expectedExample{}, offsets: map[string][]int64{}}
	var ex stream.Example
	err := stream.ReadPartition(context.Background(), cfg.Kafka, cfg.Topics.Examples, 0, func(r *kgo.Record) error {
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			return err
		}
		out.count[ex.EventID]++
		out.offsets[ex.EventID] = append(out.offsets[ex.EventID], r.Offset)
		out.ex[ex.EventID] = expectedExample{ex.Label, ex.Weight}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
