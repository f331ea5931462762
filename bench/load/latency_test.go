package load

import "testing"

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
