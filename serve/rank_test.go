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
				cands[i] = scored{idx: i, logit: float32(rng.IntN(50))} // many ties
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
