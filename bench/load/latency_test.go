package load

import (
	"slices"
	"testing"
	"time"
)

// TestFindMaxStepsWithoutCap: the step-up search raises the rate past the
// old last step (5,000/s) for as long as the replica keeps up.
func TestFindMaxStepsWithoutCap(t *testing.T) {
	rate, steps := 50.0, 0
	for ; rate <= 100000; rate = nextRate(rate) {
		if next := nextRate(rate); next <= rate || next > 1.3*rate+250 {
			t.Fatalf("after %.0f comes %.0f", rate, next)
		}
		steps++
	}
	if steps > 40 {
		t.Errorf("%d steps to pass 100,000/s, want a geometric search", steps)
	}
}

// The report says what --find-max found next to the bound it is judged
// against, both measured in the same run.
func TestFindMaxTableGivesTheRateBesideTheBound(t *testing.T) {
	rep := &LatencyReport{MaxRate: 750, UnbatchedBound: 1500, Kernel: KernelFigures{KernelTime: 1333 * time.Microsecond}}
	tab := findMaxTable(rep, 10*time.Millisecond, Scoring{BatchQueries: 8, Mode: "int8"})
	want := []string{"10ms", "750/s", "1500/s", "1.333ms", "0.50x", "8", "int8"}
	if len(tab.Rows) != 1 || !slices.Equal(tab.Rows[0], want) {
		t.Errorf("rows %q, want one row %q", tab.Rows, want)
	}
}
