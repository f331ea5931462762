//go:build !amd64

package serve

// scoreRows8 scores no rows: the Go pass scores them all.
func scoreRows8(dst []float32, w []int8, q []int8, scale, bias []float32, qscale float32) int {
	return 0
}

// int8Fast reports whether the int8 pass beats the float32 kernel: not
// in pure Go, so int8 scoring scores exactly on this architecture.
func int8Fast(dim int) bool { return false }
