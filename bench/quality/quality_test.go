package quality

import (
	"math"
	"testing"

	"github.com/unirec/unirec/bench/datasets"
)

// BenchmarkMovieLensQuality trains every method on the first 90% of
// MovieLens small in time order and reports the table of bench/README.md
// (run it with -benchtime 1x -v). It is a measurement, not a gate.
func BenchmarkMovieLensQuality(b *testing.B) {
	dir, err := datasets.SharedDataDir(".")
	if err != nil {
		b.Skipf("real data sets not available: %v", err)
	}
	for b.Loop() {
		rep, err := MovieLens(Options{DataDir: dir, TrainFraction: 0.9, Negatives: 4, Seed: 1, Methods: DefaultMethods()})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("split at %s: %d training examples, %d future events; trained in %.1fs, total %.1fs\n%s",
			rep.Split.Format("2006-01-02"), rep.TrainExamples, rep.TestEvents, rep.TrainSeconds, rep.TotalSeconds, rep.Markdown())
		for _, r := range rep.Results {
			if r.Method == "unified" {
				b.ReportMetric(r.Recall10, "recall10_"+r.Task)
			}
		}
	}
}

// rank is the expected position among the items not excluded, ties
// broken at random.
func TestRank(t *testing.T) {
	f := func(scores []float32, target int, exclude []int, want float64) {
		t.Helper()
		if got := rank(scores, target, exclude); got != want {
			t.Errorf("rank(%v, %d, exclude %v) = %v, want %v", scores, target, exclude, got, want)
		}
	}
	f([]float32{3, 2, 1}, 0, nil, 0)
	f([]float32{3, 2, 1}, 2, nil, 2)
	f([]float32{3, 2, 1}, 2, []int{0}, 1)
	f([]float32{1, 1, 1, 1}, 0, nil, 1.5)
	f([]float32{1, 1, 5}, 0, []int{2, 0}, 0.5)
}

// The sampler's recorded probability is the true probability of the draw.
func TestSamplerProbabilities(t *testing.T) {
	s := newSampler(1, 4, 0.5)
	for _, it := range []int{0, 0, 0, 1} {
		s.observe(it)
	}
	const n = 200_000
	seen := map[int]int{}
	prob := map[int]float32{}
	for range n {
		it, q := s.draw()
		seen[it]++
		prob[it] = q
	}
	for it, q := range prob {
		if emp := float64(seen[it]) / n; math.Abs(emp-float64(q)) > 0.01 {
			t.Errorf("item %d: drawn %.3f of the time, SampleProb %.3f", it, emp, q)
		}
	}
	if want := float32(0.5/4 + 0.5*3.0/4); math.Abs(float64(prob[0]-want)) > 1e-6 {
		t.Errorf("item 0: SampleProb %v, want %v", prob[0], want)
	}
}
