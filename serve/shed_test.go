package serve

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoadShedding: with every slot taken, a request waits in the queue
// at most half its budget and is then answered by the fallback; with the
// queue full too, it is refused at once with 429 and Retry-After.
func TestLoadShedding(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{Load: LoadOptions{MaxInFlight: 1, MaxQueue: 1},
		UseCases: []UseCase{{Name: "notifications", FallbackItems: []string{"s-1"}, Environment: Environment{FallbackChain: []string{"static"}}}}},
		catalog(10))
	req := &Request{UseCase: "notifications", Context: user("u"), K: 2, TimeoutMS: 1}
	resp, aerr := r.recommendLimited(context.Background(), req)
	if aerr != nil || resp.Fallback.Used {
		t.Fatalf("a free slot: %+v %v", resp, aerr)
	}
	if err := r.limit.acquire(0); err != nil {
		t.Fatal(err)
	}
	defer r.limit.release()
	resp, aerr = r.recommendLimited(context.Background(), req)
	if aerr != nil || resp.Fallback.Reason != "overloaded" || resp.Items[0].ID != "s-1" || resp.Model.Version != 1 {
		t.Fatalf("queued past the budget: %+v %v, want the fallback", resp, aerr)
	}
	r.limit.waiting.Add(1) // the queue is full
	defer r.limit.waiting.Add(-1)
	_, aerr = r.recommendLimited(context.Background(), req)
	if aerr == nil || aerr.Status != http.StatusTooManyRequests {
		t.Fatalf("queue full: %v, want 429", aerr)
	}
	if r.limit.waiting.Load() != 1 || len(r.limit.slots) != 1 {
		t.Errorf("a shed request must leave the limiter as it was: waiting %d, in flight %d", r.limit.waiting.Load(), len(r.limit.slots))
	}
	var b strings.Builder
	r.opts.Metrics.WritePrometheus(&b)
	for _, want := range []string{"unirec_serve_in_flight 1\n", "unirec_serve_queued 1\n", `unirec_serve_requests_total{use_case="notifications",code="429"} 1`,
		`unirec_serve_fallback_total{use_case="notifications",reason="overloaded"} 1`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

// TestLimiterHandsSlotsToWaiters: a queued request gets the slot that is
// released while it waits.
func TestLimiterHandsSlotsToWaiters(t *testing.T) {
	l := newLimiter(1, 1)
	if err := l.acquire(0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- l.acquire(time.Hour) }()
	for deadline := time.Now().Add(10 * time.Second); l.waiting.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}
	l.release()
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	l.release()
}
