package bench

import (
	"fmt"
	"maps"
	"slices"
)

// SortedSeries is the series of m in key order.
func SortedSeries(m map[string]*Series) []Series {
	out := make([]Series, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	return out
}

// EvalTables are the tables of an evaluation: quality per task and
// system, the reference minus every other system, and with live chunks
// (0: none) what learning the evaluated period is worth.
func EvalTables(res EvalResult, k int, period string, liveChunks int) []Table {
	tables := []Table{evalTable(res.Summaries, k, period), versusTable(res.Versus, res.VersusNDCG, k)}
	if liveChunks > 0 {
		tables = append(tables, freshnessTable(res.Freshness, res.FreshnessNDCG, k, liveChunks))
	}
	return tables
}

// evalSystems is the row order of the quality table: the evaluated
// systems, frozen then live, then the baselines.
func evalSystems(res map[string]map[string]Summary) []string {
	var out []string
	for _, sys := range []string{"unified", "per-task", "unified" + LiveSuffix, "per-task" + LiveSuffix} {
		if res[sys] != nil {
			out = append(out, sys)
		}
	}
	return append(out, BaselineNames...)
}

func evalTable(res map[string]map[string]Summary, k int, period string) Table {
	t := Table{Title: fmt.Sprintf("Quality on the %s period (recall@%d = HR@%d, NDCG@%d, MRR, sampled AUC with 95%% bootstrap intervals; baselines built from the training events, frozen at the cut)", period, k, k, k),
		Header: []string{"task", "system", "queries", fmt.Sprintf("recall@%d", k), fmt.Sprintf("NDCG@%d", k), "MRR", "sampled AUC", "coverage"}}
	for _, task := range slices.Sorted(maps.Keys(res["popularity"])) {
		for _, sys := range evalSystems(res) {
			s := res[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, fmt.Sprint(s.Queries), interval(s.Recall), interval(s.NDCG), interval(s.MRR), interval(s.AUC), fmt.Sprintf("%.3f", s.Coverage)})
		}
	}
	return t
}

// versusTable says, per task, whether the unified model's recall and NDCG
// are higher than each other system's beyond chance (paired bootstrap).
func versusTable(recall, ndcg map[string]map[string]Interval, k int) Table {
	return differenceTable(fmt.Sprintf("Unified minus each other system, recall@%d and NDCG@%d (paired bootstrap, 95%%)", k, k),
		"versus", "unified", recall, ndcg)
}

// freshnessTable says, per system and task, what learning the evaluated
// period while being asked is worth over the model frozen at the cut.
func freshnessTable(recall, ndcg map[string]map[string]Interval, k, chunks int) Table {
	return differenceTable(fmt.Sprintf("The value of freshness: live (learning the period in %d chunks, each asked before it is learned) minus frozen at the cut, recall@%d and NDCG@%d (paired bootstrap, 95%%)", chunks, k, k),
		"system", "live", recall, ndcg)
}

// differenceTable has a row per system and task of recall and NDCG
// differences, with who (the better side when a difference is positive)
// in the verdicts.
func differenceTable(title, column, who string, recall, ndcg map[string]map[string]Interval) Table {
	t := Table{Title: title, Header: []string{"task", column, "recall difference", "verdict", "NDCG difference", "verdict"}}
	for _, sys := range slices.Sorted(maps.Keys(recall)) {
		for _, task := range slices.Sorted(maps.Keys(recall[sys])) {
			r, n := recall[sys][task], ndcg[sys][task]
			t.Rows = append(t.Rows, []string{task, sys, difference(r), verdict(r, who), difference(n), verdict(n, who)})
		}
	}
	return t
}

func difference(d Interval) string {
	return fmt.Sprintf("%+.4f [%+.4f, %+.4f]", d.Mean, d.Low, d.High)
}

func verdict(d Interval, who string) string {
	switch {
	case d.Low > 0:
		return who + " better beyond chance"
	case d.High < 0:
		return who + " worse beyond chance"
	}
	return "within chance"
}

func interval(i Interval) string {
	return fmt.Sprintf("%.4f [%.4f, %.4f]", i.Mean, i.Low, i.High)
}
