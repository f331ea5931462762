package main

import "testing"

// freePort returns a free TCP port below the ephemeral range (ports.go).
func freePort(t *testing.T) int {
	t.Helper()
	return freePortBlock(t, 1)
}

// freePortBlock returns the first of n consecutive free ports below the
// ephemeral range.
func freePortBlock(t *testing.T, n int) int {
	t.Helper()
	base, err := pickPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return base
}

// Picked ports are below the ephemeral range, distinct, and free.
func TestFreePortsAvoidTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for i := 0; i < 20; i++ {
		p := freePort(t)
		if p >= low || seen[p] {
			t.Fatalf("port %d: ephemeral range starts at %d, seen before: %v", p, low, seen[p])
		}
		seen[p] = true
	}
	base := freePortBlock(t, 93)
	if base+92 >= low {
		t.Fatalf("block [%d, %d] reaches the ephemeral range at %d", base, base+92, low)
	}
}
