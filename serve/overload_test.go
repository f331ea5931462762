package serve

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unirec/unirec/stream/streamtest"
)

// peaks samples the process's goroutines and heap until stop is called.
type peaks struct {
	goroutines, heap atomic.Int64
	stop             func()
}

func samplePeaks() *peaks {
	p := &peaks{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			p.goroutines.Store(max(p.goroutines.Load(), int64(runtime.NumGoroutine())))
			runtime.ReadMemStats(&ms)
			p.heap.Store(max(p.heap.Load(), int64(ms.HeapInuse)))
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	p.stop = func() { close(done); wg.Wait() }
	return p
}

// 1,000 slow clients hold connections with unfinished headers while a
// burst of requests at ten times the rate the replica sustains arrives:
// goroutines and heap stay within the connection cap's bound, the excess
// is refused (503 over the connection cap, 429 over the limiter) or
// closed, nothing hangs, and a well-behaved client with its connection
// already open is answered throughout, and served 200 once the burst is
// over.
func TestOverloadIsBounded(t *testing.T) {
	if raceEnabled {
		t.Skip("1,000 connections and a flood of requests: run without -race (it takes 30 s with it); the limiter's concurrency is raced in TestLimiterHandsSlotsToWaiters")
	}
	const slow, spare, workers = 1000, 48, 96
	r, _ := newTestReplica(t, ReplicaOptions{Load: LoadOptions{MaxInFlight: 2, MaxQueue: 4}}, catalog(250000))
	o := DefaultHTTPOptions()
	o.MaxConnections = slow + spare
	o.ReadHeaderTimeout = 30 * time.Second // the slow clients stay for the whole test
	addr, refused := serveOn(t, r.Handler(), o)
	const body = `{"use_case":"notifications","context":{"user_id":"u"},"k":10,"timeout_ms":2000}`
	post := func(cl *http.Client) (int, error) {
		resp, err := cl.Post("http://"+addr+"/v1/recommend", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	good := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer good.Transport.(*http.Transport).CloseIdleConnections()
	// The sustainable rate: MaxInFlight clients, one request at a time each.
	start := time.Now()
	var pw sync.WaitGroup
	const probe = 30
	for range 2 {
		pw.Add(1)
		go func() {
			defer pw.Done()
			cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer cl.Transport.(*http.Transport).CloseIdleConnections()
			for range probe {
				if status, err := post(cl); err != nil || status != http.StatusOK {
					t.Errorf("an idle replica answered %d, %v", status, err)
					return
				}
			}
		}()
	}
	pw.Wait()
	if t.Failed() {
		t.FailNow()
	}
	rate := float64(2*probe) / time.Since(start).Seconds()
	if status, err := post(good); err != nil || status != http.StatusOK { // its connection is open before the flood
		t.Fatalf("an idle replica answered %d, %v", status, err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseG, baseHeap := runtime.NumGoroutine(), int64(ms.HeapInuse)

	for range slow {
		partialHeaders(t, addr)
	}
	streamtest.WaitFor(t, 30*time.Second, "the server to hold the slow connections", func() bool { return runtime.NumGoroutine() >= baseG+slow })
	pk := samplePeaks()

	burst := int(20 * rate) // two seconds' worth at ten times the rate
	var statuses sync.Map   // status or error kind -> *atomic.Int64
	count := func(k string) {
		v, _ := statuses.LoadOrStore(k, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	jobs := make(chan struct{}, burst)
	for range burst {
		jobs <- struct{}{}
	}
	close(jobs)
	stopGood := make(chan struct{})
	var goodAnswers, goodOK, goodFailed atomic.Int64
	var goodErr atomic.Value
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the well-behaved client: one request at a time on its open connection
		defer wg.Done()
		for {
			select {
			case <-stopGood:
				return
			default:
			}
			status, err := post(good)
			switch {
			case err != nil:
				goodFailed.Add(1)
				goodErr.Store(err)
			case status == http.StatusOK:
				goodOK.Add(1)
				fallthrough
			default:
				goodAnswers.Add(1)
			}
		}
	}()
	burstStart := time.Now()
	var bw sync.WaitGroup
	for range workers {
		bw.Add(1)
		go func() {
			defer bw.Done()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Timeout: 10 * time.Second, Transport: tr}
			for range jobs {
				status, err := post(cl)
				var ne net.Error
				switch {
				case err == nil:
					count(fmt.Sprint(status))
				case errors.As(err, &ne) && ne.Timeout():
					count("timeout")
				default:
					count("closed")
				}
			}
		}()
	}
	bw.Wait()
	elapsed := time.Since(burstStart)
	close(stopGood)
	wg.Wait()
	pk.stop()

	got := map[string]int64{}
	statuses.Range(func(k, v any) bool { got[k.(string)] = v.(*atomic.Int64).Load(); return true })
	if got["timeout"] > 0 || got["200"]+got["429"]+got["503"]+got["closed"] != int64(burst) {
		t.Fatalf("burst of %d: %v: every request must be answered 200, 429 or 503, or closed, none left hanging", burst, got)
	}
	if got["429"] == 0 || got["503"]+got["closed"] == 0 {
		t.Fatalf("burst of %d at %.0f req/s: %v: the limiter and the connection cap were not both reached", burst, float64(burst)/elapsed.Seconds(), got)
	}
	if offered := float64(burst) / elapsed.Seconds(); offered < 3*rate {
		t.Fatalf("the burst offered %.0f req/s, not well above the sustainable %.0f", offered, rate)
	}
	if goodFailed.Load() > 0 || goodAnswers.Load() == 0 {
		t.Fatalf("the well-behaved client: %d answers, %d failed (%v)", goodAnswers.Load(), goodFailed.Load(), goodErr.Load())
	}
	bound := baseG + o.MaxConnections + maxRefusing + 3*workers + 16 // server: one per connection held or refused; client: workers and their connections
	if g := int(pk.goroutines.Load()); g > bound {
		t.Fatalf("peak goroutines %d, bound %d (base %d)", g, bound, baseG)
	}
	if h := pk.heap.Load() - baseHeap; h > 128<<20 {
		t.Fatalf("heap grew by %d MiB under the flood", h>>20)
	}
	for range 5 {
		if status, err := post(good); err != nil || status != http.StatusOK {
			t.Fatalf("after the burst the well-behaved client got %d, %v", status, err)
		}
	}
	t.Logf("sustainable %.0f req/s; %d slow connections held; burst of %d in %s (%.0f req/s offered): %v; %d connections refused by the cap; "+
		"well-behaved client: %d answered (%d with 200), 0 failed; peak goroutines %d (base %d, bound %d), heap +%d MiB",
		rate, slow, burst, elapsed.Round(time.Millisecond), float64(burst)/elapsed.Seconds(), got, refused.Load(),
		goodAnswers.Load(), goodOK.Load(), pk.goroutines.Load(), baseG, bound, (pk.heap.Load()-baseHeap)>>20)
}
