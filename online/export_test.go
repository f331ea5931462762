package online

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Every capture holds exactly the rows in memory at that moment, sorted,
// with their current weights, although only the first reads them all and
// the later ones merge what was committed since: rows created, updated,
// expired (a TTL shorter than the log) and created again, with commits
// between captures and captures on their own.
func TestCapturesMergeOnlyWhatChangedAndMatchEveryRow(t *testing.T) {
	exs := synthExamples(t, 6000) // 10 minutes of event time
	set := metrics.NewSet()
	tr := openTest(t, TrainerOptions{TTL: 2 * time.Minute, Metrics: set})
	defer tr.Close()
	captures := 0
	for start := 0; start < len(exs); start += 700 {
		chunk := exs[start:min(start+700, len(exs))]
		applyAll(t, tr, chunk[:len(chunk)/2])
		if err := tr.Commit(); err != nil {
			t.Fatal(err)
		}
		applyAll(t, tr, chunk[len(chunk)/2:])
		c := capture(t, tr)
		captures++
		ids, weights := everyRow(tr)
		if !slices.Equal(c.IDs, ids) {
			t.Fatalf("capture %d: %d rows, the table holds %d", captures, len(c.IDs), len(ids))
		}
		for i := range weights {
			if math.Float32bits(c.Weights[i]) != math.Float32bits(weights[i]) {
				t.Fatalf("capture %d: weight %d of row %x is %v, the table holds %v", captures, i%(tr.cfg.Dim+1), ids[i/(tr.cfg.Dim+1)], c.Weights[i], weights[i])
			}
		}
	}
	if set.GetOrCreateCounter("unirec_trainer_rows_expired_total").Get() == 0 {
		t.Fatal("no row expired: the test does not exercise deletions")
	}
}

// A capture the publisher still holds is never changed by later ones.
func TestCaptureIsNotChangedByLaterCaptures(t *testing.T) {
	exs := synthExamples(t, 2000)
	tr := openTest(t, TrainerOptions{})
	defer tr.Close()
	applyAll(t, tr, exs[:1000])
	first := capture(t, tr)
	ids, weights := slices.Clone(first.IDs), slices.Clone(first.Weights)
	applyAll(t, tr, exs[1000:])
	if later := capture(t, tr); slices.Equal(later.Weights, weights) {
		t.Fatal("the second capture equals the first: nothing was learned in between")
	}
	if !slices.Equal(first.IDs, ids) || !slices.Equal(first.Weights, weights) {
		t.Fatal("the first capture changed after the second was taken")
	}
}

// everyRow reads the rows in memory the slow way: every id sorted, its
// weights and bias.
func everyRow(tr *Trainer) ([]uint64, []float32) {
	var ids []uint64
	tr.rows.each(func(_ int32, id uint64) { ids = append(ids, id) })
	slices.Sort(ids)
	var w []float32
	for _, id := range ids {
		slot, _ := tr.rows.find(id)
		w = append(w, tr.rows.w(slot)...)
	}
	return ids, w
}
