package load

import (
	"runtime"
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

// A run's machine CPU is the busy share of the ticks between its ends and
// that busy time per request: 150 of 400 ticks (1.5 s of CPU at USER_HZ
// 100) over 1,500 requests is 37.5% and 1 ms a request.
func TestMachineCPUIsBusyTicksPerRequest(t *testing.T) {
	var r Result
	r.machineCPU(cpuTicks{busy: 1000, total: 5000}, cpuTicks{busy: 1150, total: 5400}, 1500)
	if r.MachineBusy != 0.375 || r.CPUPerRequest != time.Millisecond {
		t.Fatalf("busy %g, %s per request; want 0.375 and 1ms", r.MachineBusy, r.CPUPerRequest)
	}
	if now, ok := readCPUTicks(); runtime.GOOS == "linux" && (!ok || now.total <= 0 || now.busy > now.total) {
		t.Fatalf("/proc/stat read as %+v, %v", now, ok)
	}
}
