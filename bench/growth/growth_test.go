package growth

import (
	"context"
	"testing"
)

// The growth bench's smoke test: two tiny points train, snapshot, build a
// replica and answer; every figure is there, the rows cover every user
// and item, and a larger point holds more.
func TestGrowthMeasuresEveryFigure(t *testing.T) {
	figs, err := Run(context.Background(), Options{Dir: t.TempDir(), Points: []Point{{Users: 300, Items: 100}, {Users: 3000, Items: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range figs {
		if f.Rows < f.Users+f.Items || f.TrainerHeap <= 0 || f.Pebble <= 0 || f.FullBytes <= 0 || f.DeltaBytes <= 0 ||
			f.DeltaRows <= 0 || f.ReplicaHeap <= 0 || f.ColdStart <= 0 || f.Query <= 0 {
			t.Fatalf("%d users x %d items: a figure is missing: %+v", f.Users, f.Items, f)
		}
	}
	if small, large := figs[0], figs[1]; large.FullBytes <= small.FullBytes || large.Rows <= small.Rows {
		t.Fatalf("ten times the users: %d rows and %d bytes against %d and %d", large.Rows, large.FullBytes, small.Rows, small.FullBytes)
	}
	if len(Table(figs).Rows) != 2 || len(Plot(figs)) == 0 {
		t.Fatal("no table or plot")
	}
	spilled, err := Run(context.Background(), Options{Dir: t.TempDir(), Points: []Point{{Users: 3000, Items: 100}}, Spill: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, in := spilled[0].ReplicaHeap, figs[1].ReplicaHeap; got >= in {
		t.Fatalf("a replica with its rows spilled holds %d heap bytes, one with them in memory %d", got, in)
	}
}
