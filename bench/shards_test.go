package bench

import (
	"math"
	"testing"
)

// idsOwnedBy returns n feature ids that owner gives to process p of two.
func idsOwnedBy(p, n int) []uint64 {
	var out []uint64
	for id := uint64(1); len(out) < n; id++ {
		if owner(id, 2) == p {
			out = append(out, id)
		}
	}
	return out
}

// Two processes, steps of two examples: example 0 of a step is computed
// by process 0, example 1 by process 1. A row read by a process that does
// not own it is pulled once per step and pushed back once per step, however
// many of that process's examples read it; owners count every update.
func TestShardExchangeCountsRemoteRowsOncePerStep(t *testing.T) {
	zero, one := idsOwnedBy(0, 2), idsOwnedBy(1, 2)
	a, b := zero[0], zero[1] // owned by process 0
	c := one[0]              // owned by process 1
	log := [][]uint64{
		{a, c}, // process 0: c is remote
		{a, b}, // process 1: a and b are remote
		{a, c}, // next step, process 0: c is remote
		{c, c}, // process 1: c is its own
	}
	f := SimulateShards(log, 2, 2, 1, 0) // rows of 2 float32: 8 bytes
	// Remote rows: step 1 {c} for 0, {a, b} for 1; step 2 {c} for 0.
	if want := 4.0 * 8 / 4; f.PullBytes != want || f.PushBytes != want {
		t.Fatalf("pull %v, push %v bytes per example; want %v each", f.PullBytes, f.PushBytes, want)
	}
	if f.RowsPerStep != 2.5 { // {a, b, c}, then {a, c}
		t.Fatalf("%v distinct rows per step, want 2.5", f.RowsPerStep)
	}
	// Updates: process 0 owns a (3) and b (1), process 1 owns c (4).
	if f.Imbalance != 1 || math.Abs(f.HotRow-0.5) > 1e-12 {
		t.Fatalf("imbalance %v, hottest row %v; want 1 and 0.5", f.Imbalance, f.HotRow)
	}
	if one := SimulateShards(log, 1, 2, 1, 0); one.PullBytes != 0 || one.PushBytes != 0 || one.Imbalance != 1 {
		t.Fatalf("one process exchanges %v + %v bytes, imbalance %v; want nothing and 1", one.PullBytes, one.PushBytes, one.Imbalance)
	}
}

// A replicated row has no owner: every process holds it and sends the
// others its summed gradient once per step; it leaves the owners' balance.
func TestReplicatedRowsAreSentToEveryProcess(t *testing.T) {
	zero, one := idsOwnedBy(0, 2), idsOwnedBy(1, 2)
	a, c := zero[0], one[0]
	log := [][]uint64{{a, c}, {a, c}}    // one step: a read by both, c by both
	f := SimulateShards(log, 2, 2, 1, 1) // a and c have 2 updates each; a or c replicated (ties by id)
	// The owned row is remote for one process (1 pull, 1 push); the
	// replicated row is pushed by both processes to the other (2 pushes).
	if f.PullBytes != 1*8/2.0 || f.PushBytes != 3*8/2.0 {
		t.Fatalf("pull %v, push %v bytes per example; want 4 and 12", f.PullBytes, f.PushBytes)
	}
	if f.Imbalance != 2 { // the owned row's 2 updates are all on one of two owners
		t.Fatalf("imbalance %v, want 2", f.Imbalance)
	}
}
