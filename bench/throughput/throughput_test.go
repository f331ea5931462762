package throughput

import (
	"context"
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
