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
	// AUC is the query's sampled AUC (the engaged item scored against
	// random catalog items, see SampledAUC), when HasAUC.
	AUC    float64
	HasAUC bool
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
	// AUC is the mean sampled AUC of the queries that measured one.
	AUC Interval
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
	var aucs []float64
	for _, q := range qs {
		if q.HasAUC {
			aucs = append(aucs, q.AUC)
		}
	}
	s.AUC = bootstrapMean(aucs)
	return s
}

// SampledAUC is the probability that the engaged item outscores a random
// one: the fraction of negatives scored below pos, ties counting half.
func SampledAUC(pos float64, negs []float64) float64 {
	if len(negs) == 0 {
		return 0.5
	}
	var wins float64
	for _, n := range negs {
		switch {
		case pos > n:
			wins++
		case pos == n:
			wins += 0.5
		}
	}
	return wins / float64(len(negs))
}

// PairedRecallDifference is the mean of recall@k of a minus that of b over
// the same queries (a[i] and b[i] answer one query), with a 95% paired
// bootstrap interval: an interval that excludes 0 is a difference beyond
// chance.
func PairedRecallDifference(a, b []Query, k int) Interval {
	return pairedDifference(a, b, k, func(m QueryMetrics) float64 { return m.Recall })
}

// PairedNDCGDifference is PairedRecallDifference for NDCG@k.
func PairedNDCGDifference(a, b []Query, k int) Interval {
	return pairedDifference(a, b, k, func(m QueryMetrics) float64 { return m.NDCG })
}

func pairedDifference(a, b []Query, k int, f func(QueryMetrics) float64) Interval {
	n := min(len(a), len(b))
	d := make([]float64, n)
	for i := range d {
		d[i] = f(Score(a[i], k)) - f(Score(b[i], k))
	}
	return bootstrapMean(d)
}

func bootstrap(ms []QueryMetrics, f func(QueryMetrics) float64) Interval {
	vals := make([]float64, len(ms))
	for i, m := range ms {
		vals[i] = f(m)
	}
	return bootstrapMean(vals)
}

// bootstrapMean is the mean of vals with its 95% bootstrap interval (1000
// resamples, deterministic).
func bootstrapMean(vals []float64) Interval {
	if len(vals) == 0 {
		return Interval{}
	}
	var sum float64
	for _, v := range vals {
		sum += v
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
