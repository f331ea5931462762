package serve

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The top-k keeps exactly the k best candidates in bestFirst's order
// (logit, then lowest index), whatever the order they are offered in,
// with many ties, fewer candidates than k, and NaN logits never kept.
func TestTopKKeepsTheBestWhateverTheOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 5, 100, 399, 400, 401, 1000, 5000} {
		for _, k := range []int{1, 3, 100, 400} {
			cands := make([]scored, n)
			for i := range cands {
				cands[i] = scored{idx: i, logit: float32(rng.IntN(50) - 25)} // many ties, both signs
				if rng.IntN(100) == 0 {
					cands[i].logit = float32(math.NaN())
				}
			}
			var want []scored
			for _, c := range cands {
				if !math.IsNaN(float64(c.logit)) {
					want = append(want, c)
				}
			}
			slices.SortFunc(want, bestFirst)
			want = want[:min(k, len(want))]
			rng.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
			top := &topK{k: k}
			for _, c := range cands {
				top.offer(c)
			}
			if got := top.sorted(); !slices.Equal(got, want) {
				t.Fatalf("n %d, k %d: kept %d candidates, not the %d best", n, k, len(got), len(want))
			}
		}
	}
}

// Rank keys order candidates as logit then lowest index do, over every
// kind of float (negative, subnormal, infinite; -0 just below +0), and
// give back the candidate they were made of, bit for bit.
func TestRankKeysOrderByLogitThenIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-45, -1e-45, float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1, -1}
	logit := func() float32 {
		if rng.IntN(4) == 0 {
			return special[rng.IntN(len(special))]
		}
		return float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10)))
	}
	naive := func(a, b scored) int {
		switch {
		case a.logit > b.logit:
			return -1
		case a.logit < b.logit:
			return 1
		case math.Signbit(float64(a.logit)) != math.Signbit(float64(b.logit)): // -0 and +0
			if math.Signbit(float64(a.logit)) {
				return 1
			}
			return -1
		}
		return a.idx - b.idx
	}
	for range 100000 {
		a, b := scored{idx: rng.IntN(1 << 31), logit: logit()}, scored{idx: rng.IntN(4), logit: logit()}
		if rng.IntN(8) == 0 {
			b.logit = a.logit
		}
		if got, want := bestFirst(a, b), naive(a, b); (got < 0) != (want < 0) || (got == 0) != (want == 0) {
			t.Fatalf("bestFirst(%+v, %+v) = %d, want the sign of %d", a, b, got, want)
		}
		if back := fromRankKey(rankKey(a)); back.idx != a.idx || math.Float32bits(back.logit) != math.Float32bits(a.logit) {
			t.Fatalf("%+v came back from its key as %+v", a, back)
		}
	}
}
