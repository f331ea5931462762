package serve

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/unirec/unirec/snapshot"
)

// randomSpecs returns q whole-catalog jobs over one random n x dim matrix,
// each with its own context vector, k, bias, boosts, filter and shards.
func randomSpecs(rng *rand.Rand, n, dim, q int) []*scoreSpec {
	mat := make([]float32, n*(dim+1))
	for i := range mat {
		mat[i] = rng.Float32()*2 - 1
	}
	specs := make([]*scoreSpec, q)
	for j := range specs {
		cv := make([]float32, dim)
		for i := range cv {
			cv[i] = rng.Float32()*2 - 1
		}
		var boosts []boost
		for i := 0; i < n; i += 1 + rng.IntN(n/8) {
			boosts = append(boosts, boost{idx: int32(i), z: rng.Float32() * 4})
		}
		excluded := map[int]bool{}
		for range 50 {
			excluded[rng.IntN(n)] = true
		}
		mod := 1 + j%3
		specs[j] = &scoreSpec{mat: mat, cv: cv, bias: rng.Float32(), boosts: boosts, k: 1 + rng.IntN(200),
			shards: 1 + j%4, allow: func(i int) bool { return !excluded[i] && i%mod == 0 }}
	}
	return specs
}

// sameScored fails unless got and want hold the same items with the same
// logits, bit for bit, in the same order.
func sameScored(t *testing.T, what string, got, want []scored) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].idx != want[i].idx || math.Float32bits(got[i].logit) != math.Float32bits(want[i].logit) {
			t.Fatalf("%s: rank %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// TestBatchedEqualsSingle: ranking jobs in one pass gives each exactly
// what it gets alone (same items, same logits bit for bit), whatever its
// k, bias, boosts, exclusions, filter and shards, exact or int8, over
// matrices of one block and of several shards.
func TestBatchedEqualsSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct{ n, dim, q int }{{500, 8, 3}, {10000, 64, 8}, {20000, 33, 16}} {
		for _, quant := range []bool{false, true} {
			specs := randomSpecs(rng, c.n, c.dim, c.q)
			if quant {
				qm := quantize(specs[0].mat, c.dim)
				for _, s := range specs {
					s.quant = qm
				}
			}
			tops, errs := rankBatch(specs)
			for j, s := range specs {
				if errs[j] != nil {
					t.Fatal(errs[j])
				}
				want, err := rankTop(s)
				if err != nil {
					t.Fatal(err)
				}
				sameScored(t, fmt.Sprintf("n=%d dim=%d int8=%v query %d (k %d, shards %d)", c.n, c.dim, quant, j, s.k, s.shards), tops[j], want)
			}
		}
	}
}

// TestBatchedDeadlineIsPerQuery: a job whose deadline has passed fails
// alone; the others of its pass are answered.
func TestBatchedDeadlineIsPerQuery(t *testing.T) {
	specs := randomSpecs(rand.New(rand.NewPCG(5, 6)), 5000, 16, 3)
	specs[1].expired = func() bool { return true }
	tops, errs := rankBatch(specs)
	if errs[1] != errDeadline || errs[0] != nil || errs[2] != nil {
		t.Fatalf("errors %v, want only the second errDeadline", errs)
	}
	want, _ := rankTop(specs[2])
	sameScored(t, "job after the expired one", tops[2], want)
}

// TestBatcherConcurrentCallers: callers that arrive while the only pass
// runs are scored together in passes of at most max jobs, and each gets
// its own answer (run with -race).
func TestBatcherConcurrentCallers(t *testing.T) {
	const callers, perPass = 20, 8
	specs := randomSpecs(rand.New(rand.NewPCG(7, 8)), 6000, 16, callers+1)
	b := newBatcher(perPass, 1)
	release := make(chan struct{})
	var once sync.Once
	specs[0].expired = func() bool { once.Do(func() { <-release }); return false }
	waitFor := func(cond func() bool) {
		t.Helper()
		for {
			b.mu.Lock()
			ok := cond()
			b.mu.Unlock()
			if ok {
				return
			}
			runtime.Gosched()
		}
	}
	got := make([][]scored, len(specs))
	var wg sync.WaitGroup
	wg.Go(func() { got[0], _ = b.rank(specs[0]) }) // leads the first pass, held in it
	waitFor(func() bool { return b.run == 1 })
	for i := 1; i <= callers; i++ {
		wg.Go(func() {
			var err error
			if got[i], err = b.rank(specs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(func() bool { return len(b.queue) == callers })
	close(release)
	wg.Wait()
	for i, s := range specs {
		want, _ := rankTop(s)
		sameScored(t, fmt.Sprintf("caller %d", i), got[i], want)
	}
	if p, j := b.passesDone.Get(), b.jobsDone.Get(); p != 1+(callers+perPass-1)/perPass || j != callers+1 {
		t.Errorf("%d passes for %d jobs, want %d passes (one alone, then %d at most per pass)", p, j, 1+(callers+perPass-1)/perPass, perPass)
	}
	if b.run != 0 || len(b.queue) != 0 {
		t.Errorf("after the passes: %d running, %d queued", b.run, len(b.queue))
	}
}

// TestReplicaBatchingIsExact: replicas with and without batching answer
// concurrent requests identically, with exclusions and parallel shards,
// and with the memory boosts of a trained model.
func TestReplicaBatchingIsExact(t *testing.T) {
	c, reg, owns := trainedOnPlanted(t, 4, true, 3000)
	var reqs []*Request
	for cat := range owns {
		reqs = append(reqs, &Request{UseCase: "category_exploration", K: 5, Exclude: owns[cat][:1],
			Context: map[string]string{"user_id": "u-" + cat, "category": cat}})
	}
	answers := func(batch int, items []testItem, reqs []*Request) [][]Item {
		t.Helper()
		var r *Replica
		opts := ReplicaOptions{Load: LoadOptions{BatchQueries: batch}}
		if items == nil {
			r = replicaWith(t, reg, snapshot.UpdateOf(nil, c))
			r.scorer = newBatcher(batch, 2)
		} else {
			opts.UseCases = []UseCase{{Name: "notifications", Environment: Environment{Parallelism: 3}}}
			r, _ = newTestReplica(t, opts, items)
		}
		out := make([][]Item, len(reqs))
		var wg sync.WaitGroup
		for i, req := range reqs {
			wg.Go(func() {
				resp, aerr := r.Recommend(context.Background(), req)
				if aerr != nil {
					t.Error(aerr)
					return
				}
				out[i] = resp.Items
			})
		}
		wg.Wait()
		return out
	}
	same := func(what string, a, b [][]Item) {
		t.Helper()
		for i := range a {
			if fmt.Sprint(a[i]) != fmt.Sprint(b[i]) {
				t.Fatalf("%s, request %d: batched %v, alone %v", what, i, a[i], b[i])
			}
		}
	}
	same("memory boosts", answers(8, nil, reqs), answers(1, nil, reqs))
	items := catalog(9000)
	var big []*Request
	for i := range 40 {
		big = append(big, &Request{UseCase: "notifications", K: 1 + i, Context: user("u-" + strconv.Itoa(i)),
			Exclude: []string{"m-8999", "m-" + strconv.Itoa(8990-i)}})
	}
	same("3 shards, exclusions", answers(8, items, big), answers(1, items, big))
}
