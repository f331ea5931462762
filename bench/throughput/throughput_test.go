package throughput

import (
	"context"
	"slices"
	"testing"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
)

// A tiny trainer run with a variant fills every rate and the timelines.
func TestTrainerWithVariant(t *testing.T) {
	r, err := Trainer(context.Background(), TrainerOptions{Examples: 2000,
		Trainer:  online.TrainerOptions{Model: model.DefaultModelConfig()},
		Variants: []Variant{{Name: "max_rows_256", Apply: func(o *online.TrainerOptions) { o.MaxRows = 256 }}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Rate <= 0 || r.RawRate <= 0 || r.FloorRate <= 0 || r.Variants["max_rows_256"] <= 0 {
		t.Errorf("rates: %+v", r)
	}
	for _, name := range []string{"raw consume", "floor", "trainer"} {
		if tl := r.Timelines[name]; len(tl) < 2 || tl[len(tl)-1].Count != 2000 {
			t.Errorf("timeline %q: %v", name, tl)
		}
	}
	if rows := Table([]*Result{r}).Rows; len(rows) != 2 {
		t.Errorf("table rows: %v", rows)
	}
}

func TestThinKeepsGapsAndLast(t *testing.T) {
	var tl []bench.Sample
	for i := range 11 {
		tl = append(tl, bench.Sample{Seconds: float64(i) * 0.05, Count: i})
	}
	got := thin(tl, 0.2)
	want := []int{0, 4, 8, 10}
	if len(got) != len(want) {
		t.Fatalf("thin: %v, want counts %v", got, want)
	}
	for i, s := range got {
		if s.Count != want[i] {
			t.Errorf("thin: %v, want counts %v", got, want)
		}
	}
}

// Run on several CPU counts, each stage's rows say how its rate scales
// against its first CPU count, the figure the trainer's two-core target
// is judged on.
func TestTableScalesEachStageAgainstItsFirstCPUCount(t *testing.T) {
	rows := Table([]*Result{
		{Stage: "trainer", CPUs: 1, Rate: 200},
		{Stage: "ingest", CPUs: 1, Rate: 100},
		{Stage: "trainer", CPUs: 2, Rate: 340},
		{Stage: "ingest", CPUs: 2, Rate: 150},
	}).Rows
	col := slices.Index(Table(nil).Header, "rate / first CPU count's")
	if col < 0 {
		t.Fatal("no scaling column")
	}
	for i, want := range []string{"", "", "1.70x (1 CPUs)", "1.50x (1 CPUs)"} {
		if rows[i][col] != want {
			t.Errorf("row %d (%s, %s CPUs): scaling %q, want %q", i, rows[i][0], rows[i][1], rows[i][col], want)
		}
	}
}
