package serve

import "golang.org/x/sys/cpu"

// aboveAVX2 writes to out, in order, every j < len(x) (a multiple of 8)
// where !(x[j]+add < thr) and returns how many (above_amd64.s): the items
// that may beat a top-k whose worst has logit thr (ties are decided by
// index), eight at a time; NaN passes, for offer to refuse.
//
//go:noescape
func aboveAVX2(out []int32, x []float32, add, thr float32) int

// above is aboveAVX2 over the longest multiple of 8 of x, when the CPU has
// AVX2; it returns how many items of x it filtered (0: none).
func above(out []int32, x []float32, add, thr float32) (filtered, n int) {
	if !cpu.X86.HasAVX2 {
		return 0, 0
	}
	m := len(x) &^ 7
	return m, aboveAVX2(out[:m], x[:m], add, thr)
}
