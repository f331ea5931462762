package online

import "testing"

// While a mini-batch step holds the table, a removed row's slot is not
// reused: an earlier example of the step may still update it, and that
// update must not land on another row. Released, the slot is free again.
func TestHeldSlotsAreNotReusedUntilReleased(t *testing.T) {
	tb := newTable(4, 2)
	a := tb.insert(1, nil, 0)
	tb.hold = true
	tb.remove(a)
	if b := tb.insert(2, nil, 0); b == a {
		t.Fatalf("a row inserted while holding got the removed slot %d", a)
	}
	tb.release()
	if c := tb.insert(3, nil, 0); c != a {
		t.Fatalf("after release the removed slot %d is free again, got %d", a, c)
	}
	if tb.hold {
		t.Fatal("release must stop holding")
	}
}
