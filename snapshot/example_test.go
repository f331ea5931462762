package snapshot_test

import (
	"fmt"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// A delta holds only what changed; applied to the base it gives the new
// model exactly.
func ExampleDiff() {
	cfg := model.DefaultModelConfig()
	cfg.Dim = 2
	base := &model.Capture{Config: cfg, IDs: []uint64{1, 2, 3}, Weights: []float32{1, 1, 0, 2, 2, 0, 3, 3, 0}}
	next := &model.Capture{Config: cfg, IDs: []uint64{1, 3, 4}, Weights: []float32{1, 1, 0, 3, 3.5, 0, 4, 4, 0}}
	d := snapshot.Diff(base, next)
	fmt.Println("changed:", d.IDs, "deleted:", d.Deleted)
	got := snapshot.Apply(base, d)
	fmt.Println("rows:", got.IDs, got.Weights)
	// Output:
	// changed: [3 4] deleted: [2]
	// rows: [1 3 4] [1 1 0 3 3.5 0 4 4 0]
}
