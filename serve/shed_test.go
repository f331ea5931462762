package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLoadShedding: with every slot taken, a request waits in the queue
// at most half its budget and is then answered by the fallback; with the
// queue full too, it is refused at once with 429 and Retry-After, before
// its body is decoded (a body that is not even JSON gets the 429).
func TestLoadShedding(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{Load: LoadOptions{MaxInFlight: 1, MaxQueue: 1},
		UseCases: []UseCase{{Name: "notifications", FallbackItems: []string{"s-1"}, Environment: Environment{FallbackChain: []string{"static"}}}}},
		catalog(10))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	const body = `{"use_case":"notifications","context":{"user_id":"u"},"k":2,"timeout_ms":1}`
	recommend := func(body string) (int, *Response) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/recommend", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out Response
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("429 without Retry-After: 1")
		}
		return resp.StatusCode, &out
	}
	if status, resp := recommend(body); status != 200 || resp.Fallback.Used {
		t.Fatalf("a free slot: %d %+v", status, resp)
	}
	r.limit.admitted.Add(1) // a request holds the one slot
	if err := r.limit.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if status, resp := recommend(body); status != 200 || resp.Fallback.Reason != "overloaded" || resp.Items[0].ID != "s-1" || resp.Model.Version != 1 {
		t.Fatalf("queued past the budget: %d %+v, want the fallback", status, resp)
	}
	r.limit.admitted.Add(1) // a request waits in the queue of one
	if status, _ := recommend(`not even JSON`); status != http.StatusTooManyRequests {
		t.Fatalf("queue full: %d, want 429 before the body is decoded", status)
	}
	if r.limit.queued() != 1 || r.limit.inFlight() != 1 {
		t.Errorf("a shed request must leave the limiter as it was: queued %d, in flight %d", r.limit.queued(), r.limit.inFlight())
	}
	var b strings.Builder
	r.opts.Metrics.WritePrometheus(&b)
	for _, want := range []string{"unirec_serve_in_flight 1\n", "unirec_serve_queued 1\n", `unirec_serve_requests_total{use_case="unknown",code="429"} 1`,
		`unirec_serve_fallback_total{use_case="notifications",reason="overloaded"} 1`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
	r.limit.release()
	r.limit.admitted.Add(-2)
}

// TestBatchIsAdmittedAsAWhole: a batch is refused (429) as a whole when
// the limiter is full, instead of some of its requests being ranked and
// others refused; with the slot busy past the budget every request of it
// is answered by its fallback.
func TestBatchIsAdmittedAsAWhole(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{Load: LoadOptions{MaxInFlight: 1, MaxQueue: 1},
		UseCases: []UseCase{{Name: "notifications", FallbackItems: []string{"s-1"}, Environment: Environment{FallbackChain: []string{"static"}}}}},
		catalog(10))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	one := `{"use_case":"notifications","context":{"user_id":"u"},"k":2,"timeout_ms":1}`
	batch := func() (int, BatchResponse) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/recommend:batch", "application/json", strings.NewReader(`{"requests":[`+one+`,`+one+`,`+one+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out BatchResponse
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if status, out := batch(); status != 200 || len(out.Responses) != 3 || out.Responses[2].Response.Fallback.Used {
		t.Fatalf("a free slot: %d %+v", status, out)
	}
	r.limit.admitted.Add(1)
	if err := r.limit.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	status, out := batch()
	if status != 200 || len(out.Responses) != 3 {
		t.Fatalf("slot busy: %d %+v", status, out)
	}
	for i, res := range out.Responses {
		if res.Status != 200 || res.Response.Fallback.Reason != "overloaded" {
			t.Errorf("slot busy: request %d got %+v, want the fallback", i, res)
		}
	}
	r.limit.admitted.Add(1)
	if status, out := batch(); status != http.StatusTooManyRequests {
		t.Fatalf("limiter full: %d %+v, want the whole batch refused with 429", status, out)
	}
	r.limit.release()
	r.limit.admitted.Add(-2)
}

// TestLimiterHandsSlotsToWaiters: a queued request gets the slot that is
// released while it waits, and stops waiting when its client leaves.
func TestLimiterHandsSlotsToWaiters(t *testing.T) {
	l := newLimiter(1, 1)
	if err := l.acquire(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- l.acquire(context.Background(), time.Hour) }()
	l.release()
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- l.acquire(ctx, time.Hour) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("a waiter whose client left: %v, want context.Canceled", err)
	}
	l.release()
}
