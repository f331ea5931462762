//go:build !amd64

package model

// avxPrefix: no AVX kernels here, the Go loops do everything.
func avxPrefix(int) int { return 0 }

func addAVX(x, y []float32)                           { panic("model: no AVX kernels") }
func decayStepAVX(w, g []float32, keep, step float32) { panic("model: no AVX kernels") }
func adaGradAVX(w, acc, g []float32, lr float32)      { panic("model: no AVX kernels") }
