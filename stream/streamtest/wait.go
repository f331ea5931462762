// Package streamtest holds what the tests of every stage share: waiting
// for a condition that another goroutine or process makes true, and
// producing a transaction. Only tests import it.
package streamtest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 20 ms until it holds, and fails the test when d
// passes first, naming what it waited for.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
