//go:build !amd64

package serve

// above filters nothing without AVX2: offerBlock compares every item.
func above(out []int32, x []float32, add, thr float32) (filtered, n int) { return 0, 0 }
