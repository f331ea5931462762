package serve

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestCoalescedScansAreExact: many concurrent requests on one core's worth
// of scans (so most of them share batches) each get exactly the top k a
// scan of their own gives; a request past its deadline drops out of its
// batch alone.
func TestCoalescedScansAreExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, dim = 5000, 16
	mat := make([]float32, n*(dim+1))
	for i := range mat {
		mat[i] = rng.Float32()*2 - 1
	}
	c := newCoalescer()
	c.max, c.running = 1, 1 // the one core is busy until every request queued
	specs := make([]*scoreSpec, 64)
	for i := range specs {
		cv := make([]float32, dim)
		for j := range cv {
			cv[j] = rng.Float32()*2 - 1
		}
		specs[i] = &scoreSpec{mat: mat, cv: cv, bias: float32(i), k: 1 + i%20, shards: 1}
		if i%3 == 0 {
			specs[i].allow = func(x int) bool { return x%3 != 0 }
		}
		if i%16 == 5 {
			specs[i].expired = func() bool { return true }
		}
	}
	got := make([][]scored, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() { got[i], errs[i] = c.rank(s) })
	}
	// 64 requests in batches of at most 16: 4 leaders, 60 joined.
	for deadline := time.Now().Add(10 * time.Second); c.joined.Load() < 60; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests joined a batch", c.joined.Load())
		}
	}
	c.mu.Lock()
	c.running = 0
	c.free.Broadcast()
	c.mu.Unlock()
	wg.Wait()
	for i, s := range specs {
		if s.expired != nil {
			if errs[i] != errDeadline {
				t.Errorf("request %d past its deadline: %v, want errDeadline", i, errs[i])
			}
			continue
		}
		want, _ := rankTop(s)
		if errs[i] != nil || !slices.Equal(got[i], want) {
			t.Fatalf("request %d: got %v %v\nwant %v", i, got[i], errs[i], want)
		}
	}
	if c.running != 0 || len(c.pending) != 0 {
		t.Errorf("after all requests: %d running, %d pending", c.running, len(c.pending))
	}
}
