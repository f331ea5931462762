package serve

import "golang.org/x/sys/cpu"

// scoreRowsAVX2 writes the approximate logits of len(dst) rows (a
// multiple of 8) against one query (dot8_amd64.s): see scoreRows8.
//
//go:noescape
func scoreRowsAVX2(dst []float32, w []int8, q []int8, scale, bias []float32, qscale float32)

// scoreRows8 writes the approximate logits of the longest multiple of 8
// of dst's rows in AVX2, when the CPU has it, and returns how many
// (0: none). Integer sums are exact and the scaling rounds as dequantize
// does, so the rows give the bits the Go pass gives.
func scoreRows8(dst []float32, w []int8, q []int8, scale, bias []float32, qscale float32) int {
	m := len(dst) &^ 7
	if !cpu.X86.HasAVX2 || m == 0 || len(q) == 0 || len(q)%16 != 0 || len(w) < m*len(q) || len(scale) < m || len(bias) < m {
		return 0
	}
	scoreRowsAVX2(dst[:m], w, q, scale, bias, qscale)
	return m
}

// int8Fast reports whether the int8 pass runs in AVX2 at dim: elsewhere
// the pure-Go pass is slower than vek's float32 kernel, and int8 scoring
// scores exactly instead.
func int8Fast(dim int) bool { return cpu.X86.HasAVX2 && dim%16 == 0 && dim > 0 }
