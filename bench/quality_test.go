package bench

import (
	"math"
	"reflect"
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

func TestSampledAUC(t *testing.T) {
	f := func(pos float64, negs []float64, want float64) {
		t.Helper()
		if got := SampledAUC(pos, negs); got != want {
			t.Errorf("SampledAUC(%v, %v) = %v, want %v", pos, negs, got, want)
		}
	}
	f(1, []float64{0, 0.5, 2, 3}, 0.5)
	f(1, []float64{1, 0}, 0.75) // a tie counts half
	f(5, []float64{math.Inf(-1)}, 1)
	f(1, nil, 0.5)
}

func TestSummarizeAveragesOnlyMeasuredAUCs(t *testing.T) {
	qs := []Query{{AUC: 1, HasAUC: true}, {AUC: 0.5, HasAUC: true}, {}}
	if got := Summarize(qs, 10, 0).AUC.Mean; got != 0.75 {
		t.Errorf("AUC mean %v, want 0.75", got)
	}
}

func TestPairedRecallDifference(t *testing.T) {
	hit := Query{Returned: []string{"a"}, Relevant: map[string]bool{"a": true}}
	miss := Query{Returned: []string{"b"}, Relevant: map[string]bool{"a": true}}
	var a, b []Query
	for i := 0; i < 100; i++ {
		a = append(a, hit)
		b = append(b, map[bool]Query{true: hit, false: miss}[i%4 == 0]) // b hits a quarter
	}
	d := PairedRecallDifference(a, b, 10)
	if math.Abs(d.Mean-0.75) > 1e-9 || d.Low <= 0 || d.High > 1 {
		t.Errorf("difference %+v, want 0.75 with an interval above 0", d)
	}
	if same := PairedRecallDifference(a, a, 10); same.Mean != 0 || same.Low != 0 || same.High != 0 {
		t.Errorf("a system against itself: %+v", same)
	}
}

func TestProgressTableListsEverySystemByTask(t *testing.T) {
	got := progressTable(map[[2]string]TaskMetrics{
		{"search", "unified"}:         {Examples: 10, AUC: 0.75, LogLoss: 0.5},
		{"notifications", "unified"}:  {Examples: 30, AUC: 0.8, LogLoss: 1.25},
		{"notifications", "per-task"}: {Examples: 30, AUC: 0.7, LogLoss: 1.5},
	})
	want := [][]string{
		{"notifications", "per-task", "30", "0.7000", "1.5000"},
		{"notifications", "unified", "30", "0.8000", "1.2500"},
		{"search", "unified", "10", "0.7500", "0.5000"},
	}
	if !reflect.DeepEqual(got.Rows, want) {
		t.Errorf("rows %v, want %v", got.Rows, want)
	}
}
