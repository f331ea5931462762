package serve

import (
	"reflect"
	"testing"
)

// A row table behaves like a map under sets and deletes, through overlays
// and compactions, and never changes an older table.
func TestRowTable(t *testing.T) {
	row := func(v float32) []float32 { return []float32{v, 0} }
	want := map[uint64][]float32{}
	tab := newRowTable()
	var old []*rowTable
	var olds []map[uint64][]float32
	for step := 0; step < 40; step++ {
		var ids, del []uint64
		for k := 0; k < 5; k++ {
			id := uint64((step*7 + k*13) % 50)
			if (step+k)%4 == 0 {
				if !contains(ids, id) {
					del = append(del, id)
				}
			} else if !contains(del, id) && !contains(ids, id) {
				ids = append(ids, id)
			}
		}
		old, olds = append(old, tab), append(olds, clone(want))
		tab = tab.with(ids, func(i int) []float32 { return row(float32(step*100 + i)) }, del)
		for i, id := range ids {
			want[id] = row(float32(step*100 + i))
		}
		for _, id := range del {
			delete(want, id)
		}
		if !reflect.DeepEqual(tab.all(), want) || tab.len() != len(want) {
			t.Fatalf("step %d: got %d rows %v, want %d %v", step, tab.len(), tab.all(), len(want), want)
		}
		for id := uint64(0); id < 50; id++ {
			if !reflect.DeepEqual(tab.get(id), want[id]) {
				t.Fatalf("step %d: get(%d) = %v, want %v", step, id, tab.get(id), want[id])
			}
		}
	}
	for i, o := range old {
		if !reflect.DeepEqual(o.all(), olds[i]) {
			t.Fatalf("table %d changed after later writes", i)
		}
	}
}

func contains(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func clone(m map[uint64][]float32) map[uint64][]float32 {
	out := map[uint64][]float32{}
	for k, v := range m {
		out[k] = v
	}
	return out
}
