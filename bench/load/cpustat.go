package load

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// The machine's CPU time, from /proc/stat (Linux): what every process
// spent during a run, the load generator's and the replica's together,
// which is what sizing a machine needs. Elsewhere, or when the file cannot
// be read, a run reports none.

// cpuTicks are the machine's busy and total CPU time, in clock ticks
// (USER_HZ, 100 a second on Linux).
type cpuTicks struct{ busy, total int64 }

// ticksPerSecond is USER_HZ, which Linux fixes at 100 for /proc/stat.
const ticksPerSecond = 100

// readCPUTicks reads the first ("cpu") line of /proc/stat; ok is false
// when it cannot.
func readCPUTicks() (t cpuTicks, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := bytes.Fields(line)
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return t, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return t, false
		}
		t.total += v
		if i != 3 && i != 4 { // idle and iowait
			t.busy += v
		}
	}
	return t, true
}

// machineCPU fills r's MachineBusy and CPUPerRequest from the ticks
// before and after a run of n requests.
func (r *Result) machineCPU(before, after cpuTicks, n int) {
	if dt := after.total - before.total; dt > 0 && n > 0 {
		r.MachineBusy = float64(after.busy-before.busy) / float64(dt)
		r.CPUPerRequest = time.Duration(after.busy-before.busy) * time.Second / ticksPerSecond / time.Duration(n)
	}
}
