package bench

import (
	"math"
	"testing"
)

func TestScore(t *testing.T) {
	f := func(returned []string, relevant []string, k int, want QueryMetrics) {
		t.Helper()
		rel := map[string]bool{}
		for _, r := range relevant {
			rel[r] = true
		}
		got := Score(Query{Returned: returned, Relevant: rel}, k)
		if math.Abs(got.Recall-want.Recall) > 1e-9 || math.Abs(got.NDCG-want.NDCG) > 1e-9 || math.Abs(got.RR-want.RR) > 1e-9 {
			t.Errorf("%v vs %v @%d: got %+v, want %+v", returned, relevant, k, got, want)
		}
	}
	f([]string{"a", "b", "c"}, []string{"a"}, 3, QueryMetrics{Recall: 1, NDCG: 1, RR: 1})
	f([]string{"a", "b", "c"}, []string{"b"}, 3, QueryMetrics{Recall: 1, NDCG: 1 / math.Log2(3), RR: 0.5})
	f([]string{"a", "b", "c"}, []string{"c"}, 2, QueryMetrics{})
	f([]string{"x", "a"}, []string{"a", "b"}, 2, QueryMetrics{Recall: 0.5, NDCG: (1 / math.Log2(3)) / (1 + 1/math.Log2(3)), RR: 0.5})
}

func TestSummarizeIntervalsContainTheMean(t *testing.T) {
	var qs []Query
	for i := 0; i < 200; i++ {
		ret := []string{"a", "b"}
		rel := map[string]bool{"b": i%2 == 0, "z": i%2 == 1}
		qs = append(qs, Query{Returned: ret, Relevant: rel})
	}
	s := Summarize(qs, 10, 4)
	if s.Recall.Low > s.Recall.Mean || s.Recall.High < s.Recall.Mean || s.Recall.High-s.Recall.Low <= 0 {
		t.Errorf("bad interval %+v", s.Recall)
	}
	if s.Coverage != 0.5 {
		t.Errorf("coverage %v, want 0.5", s.Coverage)
	}
}
