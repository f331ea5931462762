package serve

import "golang.org/x/sys/cpu"

// dotRowsAVX2 is dotRowsGo in AVX2 (dot8_amd64.s): 16 weights per
// instruction, sign-extended to int16 and multiplied-added in pairs
// (VPMOVSXBW, VPMADDWD). len(q) must be a multiple of 16.
//
//go:noescape
func dotRowsAVX2(dst []float32, w []int8, q []int16)

// dotRows writes the int32 dot product of each of the len(dst) int8 rows
// of w with q as the bits of dst[j]: in AVX2 when the CPU has it and the
// dim is a multiple of 16. Integer sums are exact, so both kernels give
// the same bits.
func dotRows(dst []float32, w []int8, q []int16) {
	if int8Fast(len(q)) && len(w) >= len(dst)*len(q) {
		dotRowsAVX2(dst, w, q)
		return
	}
	dotRowsGo(dst, w, q)
}

// int8Fast reports whether the int8 pass runs in AVX2 at dim: elsewhere
// the pure-Go pass is slower than vek's float32 kernel, and int8 scoring
// scores exactly instead.
func int8Fast(dim int) bool { return cpu.X86.HasAVX2 && dim%16 == 0 && dim > 0 }
