package model

import "golang.org/x/sys/cpu"

var hasAVX = cpu.X86.HasAVX

// avxPrefix is how many leading elements of n the AVX kernels take: a
// multiple of 8, none without AVX.
func avxPrefix(n int) int {
	if !hasAVX {
		return 0
	}
	return n &^ 7
}

// The AVX kernels (kernels_amd64.s); len of the first slice a multiple of 8.

//go:noescape
func addAVX(x, y []float32)

//go:noescape
func decayStepAVX(w, g []float32, keep, step float32)

//go:noescape
func adaGradAVX(w, acc, g []float32, lr float32)
