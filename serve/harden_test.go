package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// post sends body to path of srv and returns the status and the decoded
// error message, if any.
func post(t *testing.T, srv *httptest.Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// A request whose fallback override or context is over its bounds is
// refused with a 400 that names the field, over HTTP, alone or in a batch.
func TestOversizedRequestFieldsAreRefused(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{}, catalog(10))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	list := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%q", fmt.Sprint("s-", i))
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	ctx := func(n int) string {
		f := []string{`"user_id":"u"`}
		for i := 1; i < n; i++ {
			f = append(f, fmt.Sprintf(`"f%d":"v"`, i))
		}
		return "{" + strings.Join(f, ",") + "}"
	}
	f := func(req, want string) {
		t.Helper()
		if status, msg := post(t, srv, "/v1/recommend", req); status != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("got %d %q, want 400 naming %q", status, msg, want)
		}
		resp, err := http.Post(srv.URL+"/v1/recommend:batch", "application/json", strings.NewReader(`{"requests":[`+req+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b BatchResponse
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || len(b.Responses) != 1 {
			t.Fatalf("batch: %v %+v", err, b)
		}
		if got := b.Responses[0]; got.Status != http.StatusBadRequest || !strings.Contains(got.Error, want) {
			t.Errorf("batch: got %d %q, want 400 naming %q", got.Status, got.Error, want)
		}
	}
	ok := func(req string) {
		t.Helper()
		if status, msg := post(t, srv, "/v1/recommend", req); status != http.StatusOK {
			t.Errorf("got %d %q for a request within bounds", status, msg)
		}
	}
	base := `{"use_case":"notifications","k":2,`
	ok(base + `"context":{"user_id":"u"},"fallback":{"chain":["static"],"items":` + list(maxFallbackItems) + `}}`)
	f(base+`"context":{"user_id":"u"},"fallback":{"chain":["static"],"items":`+list(maxFallbackItems+1)+`}}`, "fallback.items: at most 1000 ids, got 1001")
	f(base+`"context":{"user_id":"u"},"fallback":{"chain":`+list(maxFallbackChain+1)+`}}`, "fallback.chain: at most 8")
	ok(base + `"context":` + ctx(maxContextFields) + `}`)
	f(base+`"context":`+ctx(maxContextFields+1)+`}`, "context: at most 64 fields, got 65")
	f(base+`"context":{"user_id":"`+strings.Repeat("u", maxContextBytes+1)+`"}}`, "context.user_id: keys and values of at most 4096 bytes")
}

// Ranking checks the request's context with its deadline: when the client
// has left, it stops at the next block and answers 499 (counted), instead
// of ranking the whole catalog for nobody.
func TestRankingStopsWhenTheClientLeft(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{}, catalog(5000))
	req := &Request{UseCase: "notifications", Context: user("u"), K: 10, TimeoutMS: 60000}
	if resp, aerr := r.Recommend(context.Background(), req); aerr != nil || len(resp.Items) != 10 || resp.Fallback.Used {
		t.Fatalf("a client that stays: %+v %v", resp, aerr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, aerr := r.Recommend(ctx, req)
	if aerr == nil || aerr.Status != 499 {
		t.Fatalf("a client that left: %+v %v, want 499", resp, aerr)
	}
	var b strings.Builder
	r.opts.Metrics.WritePrometheus(&b)
	if want := `unirec_serve_requests_total{use_case="notifications",code="499"} 1`; !strings.Contains(b.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}

// serveOn serves h with o on a fresh local port behind the connection cap
// and returns its address and the count of refused connections.
func serveOn(t *testing.T, h http.Handler, o HTTPOptions) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	srv := NewHTTPServer(h, o)
	go srv.Serve(LimitListener(ln, o.MaxConnections, func() { refused.Add(1) }))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &refused
}

// partialHeaders opens a connection that sends the start of a request and
// never finishes its headers (slowloris).
func partialHeaders(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	return c
}

// A client that never finishes its headers is cut off after
// ReadHeaderTimeout, and every unirec server has every bound set.
func TestSlowHeadersAreCutOff(t *testing.T) {
	d := DefaultHTTPOptions()
	srv := NewHTTPServer(nil, d)
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= time.Duration(maxTimeoutMS)*time.Millisecond ||
		srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 || d.MaxConnections <= 0 {
		t.Fatalf("a bound is unset: %+v", d)
	}
	o := d
	o.ReadHeaderTimeout = 100 * time.Millisecond
	addr, _ := serveOn(t, http.NotFoundHandler(), o)
	c := partialHeaders(t, addr)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server kept a connection with unfinished headers for %s: %v", time.Since(start), err)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408") {
		t.Errorf("answer %q", b)
	}
}

// With MaxConnections open (idle, partial headers), the next connection
// gets a 503 at once and is counted; once one closes, requests are
// answered again.
func TestConnectionCap(t *testing.T) {
	o := DefaultHTTPOptions()
	o.MaxConnections = 2
	addr, refused := serveOn(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }), o)
	holders := []net.Conn{partialHeaders(t, addr), partialHeaders(t, addr)}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func() int {
		t.Helper()
		resp, err := cl.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("a connection over the cap must be answered, got %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "1" {
			t.Error("503 without Retry-After")
		}
		return resp.StatusCode
	}
	if status := get(); status != http.StatusServiceUnavailable || refused.Load() != 1 {
		t.Fatalf("over the cap: %d, %d refused; want 503, 1", status, refused.Load())
	}
	holders[0].Close()
	for deadline := time.Now().Add(10 * time.Second); get() != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatal("a closed connection never gave its place back")
		}
	}
}

// The popularity fallback keeps at most its bound of items per canvas: a
// new item evicts one of the least engaged (counted), the ranking stays
// ordered and consistent, and the popular items stay.
func TestPopularityIsBounded(t *testing.T) {
	p := NewPopularity()
	evicted := metrics.NewSet().NewCounter("evicted")
	p.bound(50, evicted)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		id := fmt.Sprint("junk-", i) // a flood of one-off ids
		if i%2 == 0 {
			id = fmt.Sprint("hit-", rnd.IntN(10))
		}
		p.Observe("notifications", "play", id)
	}
	for _, c := range []string{"notifications", ""} {
		r := p.canvases[c]
		if len(r.items) != 50 || len(r.pos) != 50 {
			t.Fatalf("%q: %d items, %d positions, want 50", c, len(r.items), len(r.pos))
		}
		for i, it := range r.items {
			if r.pos[it.ID] != i || (i > 0 && it.Score > r.items[i-1].Score) {
				t.Fatalf("%q: ranking broken at %d: %+v", c, i, r.items)
			}
			if s := r.start[int(it.Score)]; s > i || r.items[s].Score != it.Score || (s > 0 && r.items[s-1].Score == it.Score) {
				t.Fatalf("%q: run of count %v starts at %d, item %d", c, it.Score, s, i)
			}
		}
	}
	top := p.Top("notifications", 10, nil)
	for _, it := range top {
		if !strings.HasPrefix(it.ID, "hit-") {
			t.Errorf("top 10 holds %s: %v", it.ID, top)
		}
	}
	if evicted.Get() < 2*(10000-50) {
		t.Errorf("%d evictions counted", evicted.Get())
	}
}
