package bench

import (
	"maps"
	"slices"
)

// SortedSeries is the series of m in key order.
func SortedSeries(m map[string]*Series) []Series {
	out := make([]Series, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[k])
	}
	return out
}
