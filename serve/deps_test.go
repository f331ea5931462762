package serve_test

import (
	"os/exec"
	"strings"
	"testing"
)

// A replica needs the scoring math (online/model), never the trainer or
// its parameter store: serving must not link Pebble or package online.
func TestServeDoesNotDependOnTheTrainer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/unirec/unirec/online" || strings.Contains(dep, "cockroachdb/pebble") {
			t.Errorf("serve depends on %s", dep)
		}
	}
}
