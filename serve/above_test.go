package serve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// above finds exactly the items that may beat a top-k's worst, in order:
// x+add not below thr, ties and NaN included, for any length (the tail
// past the last multiple of 8 is left to the caller).
func TestAboveFindsWhatTheComparisonLetsThrough(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 0.5, 0.25}
	for _, n := range []int{0, 1, 7, 8, 9, 63, 64, 1024, 1031} {
		x := make([]float32, n)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
			if rng.IntN(10) == 0 {
				x[i] = special[rng.IntN(len(special))]
			}
		}
		for _, c := range []struct{ add, thr float32 }{{0, 0.5}, {0.25, 0.5}, {-0.25, 0}, {0, float32(math.Inf(-1))}, {0, float32(math.Inf(1))}} {
			out := make([]int32, n)
			m, k := above(out, x, c.add, c.thr)
			var want []int32
			for j := range x[:m] {
				if !(x[j]+c.add < c.thr) {
					want = append(want, int32(j))
				}
			}
			if !slices.Equal(out[:k], want) {
				t.Errorf("n %d, add %g, thr %g: got %v, want %v", n, c.add, c.thr, out[:k], want)
			}
			if m != 0 && m != n&^7 {
				t.Errorf("n %d: filtered %d items, want %d or none", n, m, n&^7)
			}
		}
	}
}

// BenchmarkAbove filters blocks of 1,024 normal logits, a different block
// each time (from 4 MB, so the branch predictor cannot learn them), at
// thresholds passing about 16%, 2.3% and 0.15% of the items: a top-k
// filling up, then full.
//
//	go test -run '^$' -bench Above ./serve
func BenchmarkAbove(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	out := make([]int32, 1024)
	for _, thr := range []float32{1, 2, 3} {
		b.Run(fmt.Sprintf("thr=%g", thr), func(b *testing.B) {
			n, i := 0, 0
			for b.Loop() {
				o := (i % 1024) * 1024
				_, k := above(out, x[o:o+1024], 0, thr)
				n += k
				i++
			}
			b.ReportMetric(float64(n)/float64(b.N), "passed/block")
		})
	}
}
