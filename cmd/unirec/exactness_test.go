package main

import (
	"context"
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// trainerProc is a `unirec train` process started for a test.
type trainerProc struct {
	cmd  *exec.Cmd
	http string // the address it reported
	log  *lockedBuffer
}

func startTrainerProc(t *testing.T, cfg, broker, dataDir string) *trainerProc {
	t.Helper()
	p := &trainerProc{log: &lockedBuffer{}}
	c, err := bench.StartChild(exec.Command(unirecBin, "train", "--config", cfg, "--brokers", broker, "--data-dir", dataDir, "--listen", "127.0.0.1:0"), p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = c.Cmd
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("unirec train %s log:\n%s", dataDir, p.log.String())
		}
	})
	addrs, err := c.Await(30*time.Second, bench.AddrHTTP)
	if err != nil {
		t.Fatalf("unirec train %s: %v", dataDir, err)
	}
	p.http = addrs[bench.AddrHTTP]
	return p
}

// applied is the trainer's examples applied, or -1 when it does not answer.
func (p *trainerProc) applied() int64 {
	resp, err := http.Get("http://" + p.http + "/v1/trainer/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var m struct {
		Applied int64 `json:"applied"`
	}
	if json.NewDecoder(resp.Body).Decode(&m) != nil {
		return -1
	}
	return m.Applied
}

// stop ends the process gracefully (final commit) and waits for it.
func (p *trainerProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("unirec train did not stop cleanly: %v\n%s", err, p.log.String())
	}
}

// produceExamples produces synthetic examples [from, to) of a fixed world
// to the examples topic.
func produceExamples(t *testing.T, broker string, exs []stream.Example) {
	t.Helper()
	produceExamplesIn(t, broker, exs, 0)
}

// produceExamplesIn produces exs, in transactions of txn examples (in
// record batches of 100) when txn > 0, as ingest writes them.
func produceExamplesIn(t *testing.T, broker string, exs []stream.Example, txn int) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("unirec.examples")}
	if txn > 0 {
		opts = append(opts, kgo.TransactionalID("exactness-test"))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := stream.EnsureTopics(context.Background(), cl, []stream.TopicSpec{{Name: "unirec.examples", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, len(exs))
	for i := range exs {
		recs[i] = &kgo.Record{Value: stream.AppendExample(nil, &exs[i])}
	}
	if txn == 0 {
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		return
	}
	for part := range slices.Chunk(recs, txn) {
		if err := streamtest.ProduceTransaction(context.Background(), cl, part, 100, false); err != nil {
			t.Fatal(err)
		}
	}
}

func synthStream(t *testing.T, requests int) []stream.Example {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	return synth.NewWorld(synth.Options{Seed: 21}).Examples(reg, requests)
}

// captureDir opens a trainer's Pebble directory and captures its model.
func captureDir(t *testing.T, dir string) *model.Capture {
	t.Helper()
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: filepath.Join(dir, "trainer")})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c, err := tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A trainer process killed with SIGKILL mid-stream and restarted applies
// every example exactly once, and its model is the model of an
// uninterrupted run over the same stream: offsets, rows and every other
// piece of state are committed in one Pebble batch, and the model is a
// deterministic function of the log.
func TestKill9TrainerIsExact(t *testing.T) { kill9IsExact(t, "", 0) }

// So is a trainer learning mini-batches on its workers, from examples
// written in transactions (whose markers end its steps).
func TestKill9MiniBatchTrainerIsExact(t *testing.T) {
	kill9IsExact(t, "model:\n  step: 64\n", 700)
}

// kill9IsExact runs the kill -9 test with extra config and examples in
// transactions of txn (0: none).
func kill9IsExact(t *testing.T, extra string, txn int) {
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfg, []byte(extra+"snapshot:\n  interval: 200ms\n  hmac_key_file: "+testKey(t, dir)+"\ntrainer:\n  commit_interval: 20ms\n  min_count: 2\n  ttl: 30m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exs := synthStream(t, 20000)
	n := int64(len(exs))
	half := len(exs) / 2
	produceExamplesIn(t, b.Addr(), exs[:half], txn)

	killed := filepath.Join(dir, "killed")
	p := startTrainerProc(t, cfg, b.Addr(), killed)
	streamtest.WaitFor(t, time.Minute, "the trainer to apply a quarter of the stream", func() bool { return p.applied() >= n/4 })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	produceExamplesIn(t, b.Addr(), exs[half:], txn)
	committed := captureDir(t, killed).Applied
	t.Logf("killed with SIGKILL; %d of %d examples were committed", committed, n)

	p = startTrainerProc(t, cfg, b.Addr(), killed)
	streamtest.WaitFor(t, time.Minute, "the restarted trainer to apply the stream", func() bool { return p.applied() >= n })
	p.stop(t)

	whole := filepath.Join(dir, "uninterrupted")
	q := startTrainerProc(t, cfg, b.Addr(), whole)
	streamtest.WaitFor(t, time.Minute, "the uninterrupted trainer to apply the stream", func() bool { return q.applied() >= n })
	if steps := int64(q.metric(online.StepsTotal)); txn > 0 && (steps <= 0 || steps > n/32) {
		t.Fatalf("%d mini-batch steps for %d examples: want steps of about 64", steps, n)
	}
	q.stop(t)

	got, want := captureDir(t, killed), captureDir(t, whole)
	if got.Applied != n || want.Applied != n {
		t.Fatalf("examples applied: %d after kill and restart, %d uninterrupted, %d produced", got.Applied, want.Applied, n)
	}
	if got.Offsets[0] != want.Offsets[0] || (txn == 0 && got.Offsets[0] != n) {
		t.Fatalf("stored offset %d, uninterrupted %d, %d examples", got.Offsets[0], want.Offsets[0], n)
	}
	if !slices.Equal(got.IDs, want.IDs) {
		t.Fatalf("rows differ: %d vs %d", len(got.IDs), len(want.IDs))
	}
	var maxDiff float64
	for i := range got.Weights {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got.Weights[i]-want.Weights[i])))
	}
	for task, tp := range want.Tasks {
		if g := got.Tasks[task]; g.Bias != tp.Bias || !slices.Equal(g.Scale, tp.Scale) || !slices.Equal(g.Shift, tp.Shift) || !maps.Equal(g.Memory, tp.Memory) {
			t.Errorf("task %s adapter or memory weights differ", task)
		}
	}
	if len(want.Memory) == 0 || !reflect.DeepEqual(got.Memory, want.Memory) {
		t.Errorf("memory lists differ (or none were learned): %d vs %d lists", len(got.Memory), len(want.Memory))
	}
	if maxDiff > 1e-6 {
		t.Fatalf("max weight difference %g between the killed+restarted and the uninterrupted model", maxDiff)
	}
	t.Logf("%d rows, max weight difference %g", len(got.IDs), maxDiff)
}
