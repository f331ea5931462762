package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// The tests' child processes that cannot report the addresses they bound
// (child.go) listen
// on ports picked below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port the kernel handed out for ":0" is
// one it also hands to outgoing connections, so a process started on it a
// moment later could find it taken by some client's socket. (An "ingest-1
// dead before the planned kill" in the topology test was exactly that.)

// portsMu guards handed, the ports this process has already given out.
var (
	portsMu sync.Mutex
	handed  = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	var lo, hi int
	if err != nil {
		return 32768
	}
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &lo, &hi); err != nil || lo <= 1024 {
		return 32768
	}
	return lo
}

// pickPorts returns the first of n consecutive ports below the ephemeral
// range that are all free now and not handed out before by this process.
// The start is random, so concurrent processes rarely probe the same ports.
func pickPorts(n int) (int, error) {
	lo, hi := 10000, ephemeralLow()-n
	if hi-lo < 1000 {
		lo = 1024
	}
	if hi <= lo {
		return 0, fmt.Errorf("cannot pick %d ports below the ephemeral range (it starts at %d)", n, hi+n)
	}
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 200; try++ {
		base := lo + rand.IntN(hi-lo)
		if portsFree(base, n) {
			for p := base; p < base+n; p++ {
				handed[p] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("cannot find %d free consecutive ports in [%d, %d)", n, lo, hi+n)
}

// portsFree says whether every port of [base, base+n) is unhanded and can
// be listened on now.
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		if handed[p] {
			return false
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

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
