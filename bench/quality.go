package bench

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Query is one evaluation query: the items the system returned, best
// first, and the items that were relevant (engaged with in the future).
type Query struct {
	Returned []string
	Relevant map[string]bool
}

// QueryMetrics are the ranking metrics of one query at a cut-off K.
type QueryMetrics struct {
	Recall, NDCG, RR float64
}

// Score computes recall@K, NDCG@K and the reciprocal rank (within the
// returned list) of a query.
func Score(q Query, k int) QueryMetrics {
	var m QueryMetrics
	if len(q.Relevant) == 0 {
		return m
	}
	var dcg, hits float64
	for i, id := range q.Returned {
		if i >= k {
			break
		}
		if q.Relevant[id] {
			hits++
			dcg += 1 / math.Log2(float64(i)+2)
			if m.RR == 0 {
				m.RR = 1 / float64(i+1)
			}
		}
	}
	var ideal float64
	for i := 0; i < min(k, len(q.Relevant)); i++ {
		ideal += 1 / math.Log2(float64(i)+2)
	}
	m.Recall = hits / float64(len(q.Relevant))
	m.NDCG = dcg / ideal
	return m
}

// Interval is a mean with a bootstrap confidence interval.
type Interval struct {
	Mean, Low, High float64
}

// Summary is the quality of one system on one task.
type Summary struct {
	Queries  int
	Recall   Interval
	NDCG     Interval
	MRR      Interval
	Coverage float64 // distinct items returned / catalog size
}

// Summarize aggregates queries with 95% bootstrap intervals (1000
// resamples, deterministic).
func Summarize(qs []Query, k, catalog int) Summary {
	ms := make([]QueryMetrics, len(qs))
	seen := map[string]bool{}
	for i, q := range qs {
		ms[i] = Score(q, k)
		for j, id := range q.Returned {
			if j < k {
				seen[id] = true
			}
		}
	}
	s := Summary{Queries: len(qs)}
	s.Recall = bootstrap(ms, func(m QueryMetrics) float64 { return m.Recall })
	s.NDCG = bootstrap(ms, func(m QueryMetrics) float64 { return m.NDCG })
	s.MRR = bootstrap(ms, func(m QueryMetrics) float64 { return m.RR })
	if catalog > 0 {
		s.Coverage = float64(len(seen)) / float64(catalog)
	}
	return s
}

func bootstrap(ms []QueryMetrics, f func(QueryMetrics) float64) Interval {
	if len(ms) == 0 {
		return Interval{}
	}
	vals := make([]float64, len(ms))
	var sum float64
	for i, m := range ms {
		vals[i] = f(m)
		sum += vals[i]
	}
	const resamples = 1000
	r := rand.New(rand.NewPCG(1, 2))
	means := make([]float64, resamples)
	for b := range means {
		var s float64
		for range vals {
			s += vals[r.IntN(len(vals))]
		}
		means[b] = s / float64(len(vals))
	}
	sort.Float64s(means)
	return Interval{Mean: sum / float64(len(vals)), Low: means[resamples*25/1000], High: means[resamples*975/1000-1]}
}
