package throughput

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// heapInuse is the Go heap in use now.
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// liveHeap is the Go heap in use right after a collection: what is
// live, not the garbage the heap may hold at any moment.
func liveHeap() uint64 {
	runtime.GC()
	return heapInuse()
}

// vmHWM is the peak resident set size of the process, from
// /proc/self/status (0 where there is none).
func vmHWM() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// resetHWM resets the process' peak resident set to its current one
// (Linux: "5" to /proc/self/clear_refs), so that a stage's VmHWM is its
// own and not an earlier stage's. It says whether it could.
func resetHWM() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
