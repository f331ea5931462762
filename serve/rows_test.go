package serve

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/VictoriaMetrics/metrics"
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
// compaction, in memory and spilled to a file (ids read a directory entry
// at a time), and ids never set are not; the row count stays exact.
func TestRowTableFindsHashedIDs(t *testing.T) {
	for _, spilled := range []bool{false, true} {
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
		if spilled {
			if err := tab.spill(t.TempDir(), newSpillStats(metrics.NewSet()), func(uint64) bool { return false }); err != nil {
				t.Fatal(err)
			}
		}
		// A small delta (a read per directory entry when spilled; a
		// large one below reads all ids once): 3 rows replaced, 2 new.
		small := []uint64{ids[300], ids[301], ids[302], rng.Uint64(), rng.Uint64()}
		few := tab.with(small, func(i int) []float32 { return []float32{9, 9, float32(i)} }, ids[303:304])
		if few.len() != 5000+2-1 || few.get(ids[303]) != nil || few.get(ids[304]) == nil {
			t.Fatalf("spilled %v: small delta: %d rows, want %d", spilled, few.len(), 5000+2-1)
		}
		for i, id := range small {
			if !reflect.DeepEqual(few.get(id), []float32{9, 9, float32(i)}) {
				t.Fatalf("spilled %v: small delta: row %x = %v", spilled, id, few.get(id))
			}
		}
		more := make([]uint64, 3000) // overlay past half the base: compacted
		for i := range more {
			more[i] = rng.Uint64()
			want[more[i]] = []float32{-float32(i), 1, 2}
		}
		more = append(more, ids[200:300]...) // and rows replaced
		for _, id := range ids[200:300] {
			want[id] = []float32{7, 7, 7}
		}
		next := tab.with(more, func(i int) []float32 { return want[more[i]] }, ids[:100])
		if next.len() != 5000+3000-100 {
			t.Fatalf("spilled %v: %d rows after the delta, want %d", spilled, next.len(), 5000+3000-100)
		}
		for _, tb := range []*rowTable{tab, next} {
			for id, r := range want {
				got := tb.get(id)
				switch {
				case tb != tab && slices.Contains(ids[:100], id):
					if got != nil {
						t.Fatalf("spilled %v: deleted id %x found", spilled, id)
					}
				case tb == tab && slices.Contains(more[:3000], id):
					if got != nil {
						t.Fatalf("spilled %v: id %x found before it was set", spilled, id)
					}
				case tb == tab && slices.Contains(ids[200:300], id):
					if got == nil || got[0] == 7 {
						t.Fatalf("spilled %v: id %x: got %v, want its first row", spilled, id, got)
					}
				case !reflect.DeepEqual(got, r):
					t.Fatalf("spilled %v: id %x: got %v, want %v", spilled, id, got, r)
				}
			}
			for range 1000 {
				if id := rng.Uint64(); want[id] == nil && tb.get(id) != nil {
					t.Fatalf("spilled %v: id %x never set is found", spilled, id)
				}
			}
		}
	}
}
