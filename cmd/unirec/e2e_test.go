package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
	"github.com/unirec/unirec/stream/streamtest"
)

// unirecBin is the binary under test, built once by TestMain.
var unirecBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "unirec-e2e")
	if err != nil {
		panic(err)
	}
	unirecBin = filepath.Join(dir, "unirec")
	if out, err := exec.Command("go", "build", "-o", unirecBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build unirec: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// system is a `unirec run` process started for a test.
type system struct {
	broker, api string
	log         *lockedBuffer
}

// startSystem starts `unirec run` with extra args and waits until its API
// answers.
func startSystem(t *testing.T, dataDir string, args ...string) *system {
	t.Helper()
	return startSystemConfig(t, dataDir, "", args...)
}

// startSystemConfig is startSystem with extra YAML appended to the config.
func startSystemConfig(t *testing.T, dataDir, extraYAML string, args ...string) *system {
	t.Helper()
	s := &system{log: &lockedBuffer{}}
	cfg := filepath.Join(dataDir, "test.yaml")
	if err := os.WriteFile(cfg, []byte("snapshot:\n  interval: 300ms\ntrainer:\n  commit_interval: 300ms\n"+extraYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := bench.StartChild(exec.Command(unirecBin, append([]string{"run", "--config", cfg, "--data-dir", dataDir,
		"--broker-port=-1", "--listen", "127.0.0.1:0"}, args...)...), s.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("unirec log:\n%s", s.log.String())
		}
	})
	addrs, err := c.Await(30*time.Second, bench.AddrBroker, bench.AddrHTTP)
	if err != nil {
		t.Fatalf("unirec run: %v\n%s", err, s.log.String())
	}
	s.broker, s.api = addrs[bench.AddrBroker], addrs[bench.AddrHTTP]
	streamtest.WaitFor(t, 30*time.Second, "API to answer", func() bool {
		resp, err := http.Get("http://" + s.api + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return s
}

func (s *system) recommend(t *testing.T, body any) (int, serve.Response, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+s.api+"/v1/recommend", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	var out serve.Response
	json.Unmarshal(raw.Bytes(), &out)
	return resp.StatusCode, out, raw.String()
}

func (s *system) modelApplied(t *testing.T) int64 {
	resp, err := http.Get("http://" + s.api + "/v1/model")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var m struct {
		Applied int64 `json:"applied"`
	}
	json.NewDecoder(resp.Body).Decode(&m)
	return m.Applied
}

func (s *system) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + s.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// produceWorld produces n requests of w's events, alternating between
// franz-go and segmentio/kafka-go, keyed by request id.
func produceWorld(t *testing.T, broker string, w *synth.World, n int) int {
	t.Helper()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("unirec.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// kafka-go's Murmur2Balancer is Kafka's default partitioner, the
	// contract for well-keyed events (its Hash balancer is FNV-1a: events
	// would take the repartition detour, and at this replay's event-time
	// rate a detour of one transaction passes allowed_lateness).
	seg := &segkafka.Writer{Addr: segkafka.TCP(broker), Topic: "unirec.events", Balancer: segkafka.Murmur2Balancer{},
		BatchTimeout: 5 * time.Millisecond, BatchSize: 1000, RequiredAcks: segkafka.RequireAll}
	defer seg.Close()
	events := 0
	var segBatch []segkafka.Message
	flush := func() {
		if err := seg.WriteMessages(ctx, segBatch...); err != nil {
			t.Fatalf("kafka-go produce: %v", err)
		}
		segBatch = segBatch[:0]
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		for _, ev := range w.Next() {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			events++
			if i%2 == 0 {
				cl.Produce(ctx, &kgo.Record{Key: []byte(ev.RequestID), Value: b}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("franz-go produce: %v", err)
					}
				})
			} else {
				segBatch = append(segBatch, segkafka.Message{Key: []byte(ev.RequestID), Value: b})
			}
		}
		if i%100 == 99 { // both clients stay within the allowed lateness
			flush()
		}
	}
	flush()
	return events
}

// TestEndToEnd runs the whole pipeline in a real process: events from two
// independent Kafka clients, ingest, training, snapshots, serving. The
// planted relevant items must rank far above chance for every canvas.
func TestEndToEnd(t *testing.T) {
	s := startSystem(t, t.TempDir(), "--demo=false")
	w := synth.NewWorld(synth.Options{Seed: 7, Start: time.Now().Add(-2 * time.Hour), Step: 20 * time.Millisecond})
	asOf := w.Options().Start.Add(8000 * w.Options().Step) // the last request's time
	start := time.Now()
	firstModel := make(chan time.Duration, 1)
	go func() {
		for time.Since(start) < 3*time.Minute {
			if s.modelApplied(t) > 0 {
				firstModel <- time.Since(start)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	events := produceWorld(t, s.broker, w, 8000)
	streamtest.WaitFor(t, 3*time.Minute, "the replica to serve a model of most examples", func() bool {
		return s.modelApplied(t) > 0 && s.metric(t, "unirec_ingest_events_consumed_total") >= float64(events) &&
			s.modelApplied(t) >= int64(s.metric(t, `unirec_ingest_events_total{outcome="example"}`))
	})
	t.Logf("%d events through the pipeline in %s (%.0f events/s); first model served %s after the first event",
		events, time.Since(start), float64(events)/time.Since(start).Seconds(), <-firstModel)
	if late := s.metric(t, `unirec_ingest_dead_letters_total{reason="late"}`); late > 0 {
		t.Errorf("%v events were dead-lettered as late", late)
	}
	checkDashboardMetrics(t, s)
	items := len(w.Items())
	for _, canvas := range w.Canvases() {
		var hits, relevantTotal float64
		const queries = 40
		for i := 0; i < queries; i++ {
			ctx, relevant := w.Query(canvas, i)
			// Ask as of the data's time: the hour-of-day and day-of-week
			// features of a query at wall-clock time were never trained
			// when the data's hour differs, which made this test fail at
			// some hours.
			ctx["time"] = asOf.UTC().Format(time.RFC3339Nano)
			code, resp, raw := s.recommend(t, map[string]any{"use_case": canvas, "context": ctx, "k": 10})
			if code != 200 {
				t.Fatalf("%s: HTTP %d: %s", canvas, code, raw)
			}
			if resp.Model.Version == 0 || resp.Fallback.Used {
				t.Fatalf("%s: answer does not name a model version or used a fallback: %s", canvas, raw)
			}
			for _, it := range resp.Items {
				if relevant[it.ID] {
					hits++
				}
			}
			relevantTotal += float64(len(relevant))
		}
		recall := hits / relevantTotal
		random := 10 / float64(items)
		t.Logf("%s: recall@10 %.3f, random %.3f (%.1fx)", canvas, recall, random, recall/random)
		if recall < 3*random {
			t.Errorf("%s: recall@10 %.3f is not 3x random (%.3f)", canvas, recall, random)
		}
	}
}

// checkDashboardMetrics: every metric the Grafana dashboard queries is
// exported by a running system.
func checkDashboardMetrics(t *testing.T, s *system) {
	t.Helper()
	b, err := os.ReadFile("../../deploy/grafana/unirec-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + s.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var exported bytes.Buffer
	exported.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, name := range regexp.MustCompile(`unirec_[a-z_]+`).FindAllString(string(b), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		if !strings.Contains(exported.String(), name) {
			t.Errorf("the dashboard queries %s, which /metrics does not export", name)
		}
	}
}

// TestRecommendRejectsBadRequests checks the error answers of the API of
// a replica serving a subset of the use cases (--use-cases), through the
// Go client.
func TestRecommendRejectsBadRequests(t *testing.T) {
	s := startSystem(t, t.TempDir(), "--demo=false", "--use-cases", "notifications,search,related_items")
	cases := []struct {
		body   string
		status int
		want   string
	}{
		{`{"use_case":"nope","context":{"user_id":"u"}}`, 404, `use_case \"nope\" is not served here`},
		{`{"use_case":"category_exploration","context":{"user_id":"u","category":"x"}}`, 404, `is not served here`},
		{`{"use_case":"search",`, 400, "bad JSON"},
		{`{"use_case":"search","context":{"user_id":"u"}}`, 400, "context.query is required"},
		{`{"use_case":"related_items","context":{"query":"x"}}`, 400, "context.user_id is required"},
		{`{"use_case":"search","context":{"user_id":"u","query":"x"},"k":100000}`, 400, "k must be between"},
		{`{"use_case":"search","context":{"user_id":"u","query":"x"},"candidates":{"set":"nope"}}`, 400, "candidates.set"},
	}
	for _, c := range cases {
		resp, err := http.Post("http://"+s.api+"/v1/recommend", "application/json", strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		var raw bytes.Buffer
		raw.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(raw.String(), c.want) {
			t.Errorf("%s: got %d %s, want %d naming %q", c.body, resp.StatusCode, raw.String(), c.status, c.want)
		}
	}
	// Before any model exists the popularity fallback answers, and says so.
	cl := client.New(s.api, nil)
	resp, err := cl.Recommend(context.Background(), &serve.Request{UseCase: "notifications", Context: map[string]string{"user_id": "u-1"}})
	if err != nil || !resp.Fallback.Used || resp.Fallback.Reason != "no_model" {
		t.Errorf("without a model: got %+v %v, want 200 with fallback no_model", resp, err)
	}
	ucs, err := cl.UseCases(context.Background())
	if err != nil || len(ucs) != 3 {
		t.Errorf("use cases of a replica serving three: %+v %v", ucs, err)
	}
}

// TestKcatProducesAnEvent produces one event with kcat, as the README shows.
func TestKcatProducesAnEvent(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed: .ci/run must install it")
		}
		t.Skip("kcat is not installed")
	}
	s := startSystem(t, t.TempDir(), "--demo=false")
	ev := fmt.Sprintf(`{"event_id":"kcat-1","time":%q,"canvas":"notifications","action":"play","item_id":"m-kcat","context":{"user_id":"u-kcat"}}`,
		time.Now().UTC().Format(time.RFC3339Nano))
	cmd := exec.Command(kcat, "-P", "-b", s.broker, "-t", "unirec.events", "-K", "|")
	cmd.Stdin = strings.NewReader("u-kcat|" + ev + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	streamtest.WaitFor(t, 60*time.Second, "the kcat event to become an example", func() bool {
		return s.metric(t, `unirec_ingest_examples_total{task="notifications",label="positive"}`) >= 1
	})
}
