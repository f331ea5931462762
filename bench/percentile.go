package bench

import (
	"slices"
	"time"
)

// Percentile is the q-quantile of d (q in [0, 1], 1 the max; 0 when d is
// empty), the nearest rank below; d is not changed.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}
