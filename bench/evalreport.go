package bench

import (
	"fmt"
	"maps"
	"slices"
)

// EvalTables are the tables of an evaluation at cut-off k: quality per
// task and system (unified, per-task, popularity), and the unified model's
// recall minus each other system's with a verdict.
func EvalTables(res EvalResult, k int) (quality, versus Table) {
	return evalTable(res.Summaries, k), versusTable(res.Versus, k)
}

func evalTable(res map[string]map[string]Summary, k int) Table {
	t := Table{Title: fmt.Sprintf("Quality on the future (recall@%d, NDCG@%d, MRR, sampled AUC with 95%% bootstrap intervals)", k, k),
		Header: []string{"task", "system", "queries", fmt.Sprintf("recall@%d", k), fmt.Sprintf("NDCG@%d", k), "MRR", "sampled AUC", "coverage"}}
	for _, task := range slices.Sorted(maps.Keys(res["popularity"])) {
		for _, sys := range []string{"unified", "per-task", "popularity"} {
			s := res[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, fmt.Sprint(s.Queries), interval(s.Recall), interval(s.NDCG), interval(s.MRR), interval(s.AUC), fmt.Sprintf("%.3f", s.Coverage)})
		}
	}
	return t
}

// versusTable says, per task, whether the unified model's recall is
// higher than each other system's beyond chance (paired bootstrap).
func versusTable(versus map[string]map[string]Interval, k int) Table {
	t := Table{Title: fmt.Sprintf("Unified minus each other system, recall@%d (paired bootstrap, 95%%)", k),
		Header: []string{"task", "versus", "difference", "verdict"}}
	for _, sys := range slices.Sorted(maps.Keys(versus)) {
		for _, task := range slices.Sorted(maps.Keys(versus[sys])) {
			d := versus[sys][task]
			verdict := "within chance"
			switch {
			case d.Low > 0:
				verdict = "unified better beyond chance"
			case d.High < 0:
				verdict = "unified worse beyond chance"
			}
			t.Rows = append(t.Rows, []string{task, sys, fmt.Sprintf("%+.4f [%+.4f, %+.4f]", d.Mean, d.Low, d.High), verdict})
		}
	}
	return t
}

// SortedSeries is the series of m in key order.
func SortedSeries(m map[string]*Series) []Series {
	out := make([]Series, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	return out
}

func interval(i Interval) string {
	return fmt.Sprintf("%.4f [%.4f, %.4f]", i.Mean, i.Low, i.High)
}
