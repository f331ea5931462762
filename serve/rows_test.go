package serve

import (
	"math/rand/v2"
	"reflect"
	"slices"
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

// Rows under ids spread over the whole 64-bit range, as feature hashes
// are, are all found through the base's directory, before and after a
// compaction, and ids never set are not.
func TestRowTableFindsHashedIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	want := map[uint64][]float32{}
	var ids []uint64
	for len(ids) < 5000 {
		id := rng.Uint64()
		if _, dup := want[id]; !dup {
			ids = append(ids, id)
			want[id] = []float32{float32(len(ids)), 1, 2}
		}
	}
	tab := fromRows(ids, func(i int) []float32 { return want[ids[i]] })
	more := make([]uint64, 3000) // overlay past half the base: compacted
	for i := range more {
		more[i] = rng.Uint64()
		want[more[i]] = []float32{-float32(i), 1, 2}
	}
	for _, tb := range []*rowTable{tab, tab.with(more, func(i int) []float32 { return want[more[i]] }, ids[:100])} {
		for id, r := range want {
			if got := tb.get(id); tb != tab && slices.Contains(ids[:100], id) {
				if got != nil {
					t.Fatalf("deleted id %x found", id)
				}
			} else if (tb == tab && slices.Contains(more, id)) != (got == nil) || got != nil && !reflect.DeepEqual(got, r) {
				t.Fatalf("id %x: got %v, want %v", id, got, r)
			}
		}
		for range 1000 {
			if id := rng.Uint64(); want[id] == nil && tb.get(id) != nil {
				t.Fatalf("id %x never set is found", id)
			}
		}
	}
}
