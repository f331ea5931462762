package serve

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRankTopIsExact: for random matrices, every shard count, candidate
// restriction and filter, rankTop returns exactly the k best allowed
// items of a brute-force sort.
func TestRankTopIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	f := func(n, dim, k, shards int, restrict bool, allowEven bool) {
		t.Helper()
		mat := make([]float32, n*(dim+1))
		for i := range mat {
			mat[i] = rng.Float32()*2 - 1
		}
		cv := make([]float32, dim)
		for i := range cv {
			cv[i] = rng.Float32()*2 - 1
		}
		s := &scoreSpec{mat: mat, cv: cv, bias: 0.5, k: k, shards: shards}
		cands := make([]int, n)
		for i := range cands {
			cands[i] = i
		}
		if restrict {
			cands = cands[:0]
			for i := 0; i < n; i += 3 {
				cands = append(cands, i)
			}
			s.idx = cands
		}
		if allowEven {
			s.allow = func(i int) bool { return i%2 == 0 }
		}
		got, err := rankTop(s)
		if err != nil {
			t.Fatal(err)
		}
		var want []scored
		for _, i := range cands {
			if !allowEven || i%2 == 0 {
				z := float32(0)
				for j := range dim {
					z += cv[j] * mat[i*(dim+1)+j]
				}
				want = append(want, scored{idx: i, logit: z + mat[i*(dim+1)+dim] + 0.5})
			}
		}
		slices.SortFunc(want, func(a, b scored) int {
			if a.logit > b.logit {
				return -1
			}
			return 1
		})
		want = want[:min(k, len(want))]
		if len(got) != len(want) {
			t.Fatalf("n=%d k=%d shards=%d: %d results, want %d", n, k, shards, len(got), len(want))
		}
		for i := range want {
			if got[i].idx != want[i].idx || abs32(got[i].logit-want[i].logit) > 1e-4 {
				t.Fatalf("n=%d dim=%d k=%d shards=%d restrict=%v: rank %d is %+v, want %+v", n, dim, k, shards, restrict, i, got[i], want[i])
			}
		}
	}
	for _, shards := range []int{1, 2, 4} {
		f(10000, 64, 100, shards, false, false)
		f(10000, 32, 10, shards, true, false)
		f(9000, 7, 50, shards, false, true)
		f(5, 2, 10, shards, false, false)
	}
}

// TestRankTopStopsAtTheDeadline: scoring gives up (in every shard) once
// the deadline has passed.
func TestRankTopStopsAtTheDeadline(t *testing.T) {
	for _, shards := range []int{1, 2} {
		s := &scoreSpec{mat: make([]float32, 10000*3), cv: []float32{1, 1}, k: 10, shards: shards,
			expired: func() bool { return true }}
		if _, err := rankTop(s); err != errDeadline {
			t.Errorf("shards %d: got %v, want errDeadline", shards, err)
		}
	}
}
