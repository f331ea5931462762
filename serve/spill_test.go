package serve

import (
	"os"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// A replica that spills its base rows to serve.rows_dir serves exactly
// what one holding them in memory serves, version after version (deltas
// that compact the overlay into new, spilled bases included); its rows
// files are unlinked at once, so the directory stays empty; a base no
// version refers to any more has its file closed.
func TestSpilledRowsServeTheSameModel(t *testing.T) {
	f := newFixture(t, 6)
	dir := t.TempDir()
	mem, spilled := f.replica(ReplicaOptions{}), f.replica(ReplicaOptions{RowsDir: dir, KeepVersions: 1})
	for i := range f.caps {
		f.apply(mem, i)
		f.apply(spilled, i)
		a, b := mem.Model(), spilled.Model()
		if b.rows.base.w != nil || b.rows.base.file == nil {
			t.Fatalf("version %d: the base rows are still in memory", i)
		}
		if !reflect.DeepEqual(a.rows.all(), b.rows.all()) {
			t.Fatalf("version %d: spilled rows differ from the rows in memory", i)
		}
		for _, uc := range []string{"notifications", "related_items", "search", "category_exploration"} {
			ra, ea := f.ask(mem, uc)
			rb, eb := f.ask(spilled, uc)
			if ea != nil || eb != nil || !reflect.DeepEqual(ids(ra.Items), ids(rb.Items)) {
				t.Fatalf("version %d, %s: answers differ: %v / %v (%v, %v)", i, uc, ids(ra.Items), ids(rb.Items), ea, eb)
			}
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("%d files left in rows_dir, want none (unlinked when created)", len(left))
	}
	files := spilled.opts.Metrics.GetOrCreateGauge("unirec_serve_rows_files", nil)
	for i := 0; i < 3; i++ { // full snapshots: new bases, the old ones unreferenced
		if err := spilled.Apply(f.update(len(f.caps)-1, true)); err != nil {
			t.Fatal(err)
		}
	}
	// KeepVersions 1: the live version and the one kept for rollback hold
	// the only bases left; the others' files close once collected.
	deadline := time.Now().Add(10 * time.Second)
	for files.Get() > 2 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if n := files.Get(); n > 2 {
		t.Fatalf("%v rows files open, want at most 2: bases no version refers to keep their files", n)
	}
}

// A failed read of a spilled row serves the row as absent and counts it;
// a compaction that cannot read the base keeps base and overlay whole.
func TestSpilledRowReadFailureIsCounted(t *testing.T) {
	st := newSpillStats(metrics.NewSet())
	errs := st.readErrors
	tab := fromRows([]uint64{1, 2, 3, 4}, func(i int) []float32 { return []float32{float32(i), 1} })
	if err := tab.spill(t.TempDir(), st, func(id uint64) bool { return id == 1 }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tab.get(3), []float32{2, 1}) {
		t.Fatalf("row 3 = %v", tab.get(3))
	}
	tab.base.file.Close()
	if r := tab.get(3); r != nil || errs.Get() != 1 {
		t.Fatalf("read from a closed file: row %v, %d errors counted", r, errs.Get())
	}
	if r := tab.get(1); !reflect.DeepEqual(r, []float32{0, 1}) {
		t.Fatalf("row 1, kept in memory, = %v", r)
	}
	next := tab.with([]uint64{5, 6, 7}, func(i int) []float32 { return []float32{9, 9} }, nil) // overlay > base/2
	if next.base != tab.base || len(next.over) != 3 || next.len() != 7 {
		t.Fatalf("a failed compaction changed the table: %d in the overlay, %d rows", len(next.over), next.len())
	}
}
