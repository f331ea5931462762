package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// topology drives deploy/local/topology.sh with BASE_PORT=0: every
// process listens on a port it picks itself and reports it in its log.
type topology struct {
	t    *testing.T
	dir  string
	env  []string
	mu   sync.Mutex
	from map[string]int // where the log of a process's current run starts
}

func (tp *topology) run(args ...string) {
	tp.t.Helper()
	if args[0] == "restart" {
		tp.mu.Lock()
		tp.from[args[1]] = len(tp.log(args[1]))
		tp.mu.Unlock()
	}
	cmd := exec.Command("../../deploy/local/topology.sh", append(args[:1:1], append(args[1:], tp.dir)...)...)
	cmd.Env = append(os.Environ(), tp.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tp.t.Fatalf("topology.sh %v: %v\n%s", args, err, out)
	}
}

func (tp *topology) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(tp.dir, "logs", name+".log"))
	return string(b)
}

// url is the base URL of the process name, from the HTTP address its
// current run reported (port 0, which nothing answers, until it has).
func (tp *topology) url(name string) string {
	tp.mu.Lock()
	from := tp.from[name]
	tp.mu.Unlock()
	addr := "127.0.0.1:0"
	for _, line := range strings.Split(tp.log(name)[from:], "\n") {
		if kind, a, ok := bench.ReportedAddr(line); ok && kind == bench.AddrHTTP {
			addr = a
		}
	}
	return "http://" + addr
}

// leader returns which trainer holds the lease ("" when none answers so).
func (tp *topology) leader() string {
	for _, name := range []string{"trainer-1", "trainer-2"} {
		var m struct {
			Leader bool `json:"leader"`
		}
		if getJSON(tp.url(name)+"/v1/trainer/metrics", &m) == nil && m.Leader {
			return name
		}
	}
	return ""
}

func (tp *topology) liveVersion(name string) int64 {
	var m struct {
		Version int64 `json:"version"`
	}
	getJSON(tp.url(name)+"/v1/model", &m)
	return m.Version
}

// The local topology (broker, 2 ingest, trainer + standby, 2 replicas with
// different environments) keeps its guarantees while one ingest process,
// the active trainer and one replica are killed with SIGKILL at random
// moments and restarted: no example lost or duplicated, the standby takes
// over, the replicas converge, and requests keep being answered.
func TestTopologySurvivesCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs seven processes for about a minute")
	}
	tp := &topology{t: t, dir: t.TempDir(), from: map[string]int{}}
	tp.env = []string{"UNIREC_BIN=" + unirecBin, "BASE_PORT=0", "LEASE_TIMEOUT=6s"}
	tp.run("start")
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"ingest-1", "trainer-1", "trainer-2", "replica-home"} {
				b, err := os.ReadFile(tp.dir + "/logs/" + n + ".log")
				if err != nil {
					t.Logf("%s: %v", n, err)
				}
				t.Logf("%s log (tail):\n%s", n, tail(string(b), 30))
			}
		}
		tp.run("stop")
	})
	b, err := os.ReadFile(filepath.Join(tp.dir, "broker.addr"))
	if err != nil {
		t.Fatal(err)
	}
	broker := strings.TrimSpace(string(b))
	streamtest.WaitFor(t, 60*time.Second, "a leading trainer", func() bool { return tp.leader() != "" })

	ctx, stopTraffic := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var engaged sync.Map // engagement event ids produced
	var impressions sync.Map
	wg.Add(2)
	go func() { defer wg.Done(); produceLive(ctx, t, broker, &engaged, &impressions) }()
	var ans answers
	go func() { defer wg.Done(); queryBoth(ctx, tp, &ans) }()

	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	pause := func(lo, hi int) { time.Sleep(time.Duration(lo+r.IntN(hi-lo)) * time.Millisecond) }
	pause(2000, 4000)
	tp.run("kill", "ingest-1")
	pause(500, 1500)
	tp.run("restart", "ingest-1")
	tp.measure("ingest-1 restart to HTTP up", func() bool { return tp.healthy("ingest-1") })
	tp.measure("ingest-1 restart to committing events again", func() bool { return tp.metric("ingest-1", "unirec_ingest_events_consumed_total") > 0 })
	pause(1000, 3000)
	old := tp.leader()
	tp.run("kill", old)
	tp.measure("trainer failover (leader killed to standby leading)", func() bool { l := tp.leader(); return l != "" && l != old })
	tp.run("restart", old)
	tp.measure(old+" restart to HTTP up (standby)", func() bool { return tp.healthy(old) })
	pause(1000, 3000)
	tp.run("kill", "replica-home")
	homeDown := ans.snapshot()
	pause(500, 1500)
	tp.run("restart", "replica-home")
	tp.measure("replica-home restart to serving a model version", func() bool { return tp.liveVersion("replica-home") > 0 })
	homeUp := ans.snapshot()
	pause(3000, 4000)
	stopTraffic()
	wg.Wait()

	streamtest.WaitFor(t, 90*time.Second, "every engagement to become exactly one example", func() bool {
		return examplesComplete(t, broker, &engaged)
	})
	streamtest.WaitFor(t, 60*time.Second, "the replicas to converge on one version", func() bool {
		a, b := tp.liveVersion("replica-search"), tp.liveVersion("replica-home")
		return a > 0 && a == b
	})
	all := ans.snapshot()
	t.Logf("query ticks (both replicas asked every 50 ms): %s", all)
	t.Logf("while replica-home was down or restarting: %s", homeUp.minus(homeDown))
	if all.neither > 0 {
		t.Errorf("%d of %d query ticks were answered by neither replica", all.neither, all.ticks())
	}
}

// measure logs how long cond takes to hold (the figures deploy/README.md
// quotes) and fails the test after 90 s.
func (tp *topology) measure(what string, cond func() bool) {
	tp.t.Helper()
	start := time.Now()
	streamtest.WaitFor(tp.t, 90*time.Second, what, cond)
	tp.t.Logf("measured: %s: %s", what, time.Since(start).Round(10*time.Millisecond))
}

// metric is the value of an unlabelled metric of the process proc (0
// when it cannot be read).
func (tp *topology) metric(proc, name string) float64 {
	resp, err := http.Get(tp.url(proc) + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// healthy says whether the process name answers /healthz.
func (tp *topology) healthy(name string) bool {
	resp, err := http.Get(tp.url(name) + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// answers counts query ticks by which replica answered them.
type answers struct{ both, search, home, neither atomic.Int64 }

func (a *answers) add(search, home bool) {
	switch {
	case search && home:
		a.both.Add(1)
	case search:
		a.search.Add(1)
	case home:
		a.home.Add(1)
	default:
		a.neither.Add(1)
	}
}

func (a *answers) snapshot() tally {
	return tally{a.both.Load(), a.search.Load(), a.home.Load(), a.neither.Load()}
}

// tally is a snapshot of answers.
type tally struct{ both, search, home, neither int64 }

func (t tally) ticks() int64 { return t.both + t.search + t.home + t.neither }

func (t tally) minus(o tally) tally {
	return tally{t.both - o.both, t.search - o.search, t.home - o.home, t.neither - o.neither}
}

func (t tally) String() string {
	return fmt.Sprintf("%d ticks: %d answered by both, %d only by replica-search, %d only by replica-home, %d by neither",
		t.ticks(), t.both, t.search, t.home, t.neither)
}

// produceLive produces synthetic requests with event times at the wall
// clock until ctx ends, recording the engagement event ids.
func produceLive(ctx context.Context, t *testing.T, broker string, engaged, impressions *sync.Map) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic("unirec.events"))
	if err != nil {
		t.Error(err)
		return
	}
	defer cl.Close()
	w := synth.NewWorld(synth.Options{Seed: 5, Start: time.Now(), Step: 5 * time.Millisecond})
	for ctx.Err() == nil {
		var recs []*kgo.Record
		for i := 0; i < 20; i++ {
			for _, ev := range w.Next() {
				b, _ := json.Marshal(ev)
				recs = append(recs, &kgo.Record{Key: []byte(ev.RequestID), Value: b})
				if ev.Action == "impression" {
					impressions.Store(ev.EventID, ev.Time)
				} else {
					engaged.Store(ev.EventID, true)
				}
			}
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Errorf("produce: %v", err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// queryBoth asks both replicas every 50 ms; a tick is unanswered when
// neither gives a 200 (model or fallback).
func queryBoth(ctx context.Context, tp *topology, ans *answers) {
	client := &http.Client{Timeout: time.Second}
	ask := func(name, body string) bool {
		resp, err := client.Post(tp.url(name)+"/v1/recommend", "application/json", bytes.NewReader([]byte(body)))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for ctx.Err() == nil {
		a := ask("replica-search", `{"use_case":"search","context":{"user_id":"u-1","query":"ocean"},"k":5}`)
		b := ask("replica-home", `{"use_case":"category_exploration","context":{"user_id":"u-1","category":"Documentary"},"k":5}`)
		ans.add(a, b)
		time.Sleep(50 * time.Millisecond)
	}
}

// examplesComplete reads the committed examples: no event may have two
// examples, and every engagement must have one.
func examplesComplete(t *testing.T, broker string, engaged *sync.Map) bool {
	t.Helper()
	seen := map[string]int{}
	err := stream.ReadPartition(context.Background(), stream.Plaintext(broker), "unirec.examples", 0,
		func(r *kgo.Record) error {
			var ex stream.Example
			if err := stream.DecodeExample(r.Value, &ex); err != nil {
				return err
			}
			seen[ex.EventID]++
			return nil
		})
	if err != nil {
		t.Fatalf("read examples: %v", err)
	}
	for id, n := range seen {
		if n > 1 {
			t.Fatalf("event %s produced %d examples", id, n)
		}
	}
	missing := 0
	engaged.Range(func(k, _ any) bool {
		if seen[k.(string)] == 0 {
			missing++
		}
		return true
	})
	return missing == 0
}
