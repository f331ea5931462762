//go:build !amd64

package serve

// dotRows writes the int32 dot product of each of the len(dst) int8 rows
// of w with q as the bits of dst[j].
func dotRows(dst []float32, w []int8, q []int16) { dotRowsGo(dst, w, q) }

// int8Fast reports whether the int8 pass beats the float32 kernel: not
// in pure Go, so int8 scoring scores exactly on this architecture.
func int8Fast(dim int) bool { return false }
