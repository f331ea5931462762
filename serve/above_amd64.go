package serve

import "golang.org/x/sys/cpu"

// aboveAVX2 writes to out, in order, every j < len(x) (a multiple of 8)
// where !(x[j]+add < thr) and returns how many (above_amd64.s): the items
// that may beat a top-k whose worst has logit thr (ties are decided by
// index), eight at a time; NaN passes, for offer to refuse. lanes is
// packedLanes. It writes out[n:n+8] for every group, so out must be as
// long as x.
//
//go:noescape
func aboveAVX2(out []int32, x []float32, add, thr float32, lanes *[256][8]int32) int

// packedLanes lists, for each mask of eight lanes, its set lanes first
// (the rest is never read): a group's indexes are stored whole and only
// the set lanes are kept. (Branching per group on whether any lane passed,
// then looping over the set bits, mispredicted about one group in four
// while the top-k filled up: 1.45 us a block of 1,024 where 16% pass,
// against 0.25 us packed; BenchmarkAbove.)
var packedLanes = func() (t [256][8]int32) {
	for m := range t {
		n := 0
		for lane := range 8 {
			if m&(1<<lane) != 0 {
				t[m][n] = int32(lane)
				n++
			}
		}
	}
	return t
}()

// above is aboveAVX2 over the longest multiple of 8 of x, when the CPU has
// AVX2; it returns how many items of x it filtered (0: none).
func above(out []int32, x []float32, add, thr float32) (filtered, n int) {
	if !cpu.X86.HasAVX2 {
		return 0, 0
	}
	m := len(x) &^ 7
	return m, aboveAVX2(out[:m], x[:m], add, thr, &packedLanes)
}
