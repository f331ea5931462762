package serve

import (
	"cmp"
	"maps"
	"math/bits"
	"os"
	"slices"

	"github.com/VictoriaMetrics/metrics"
)

// rowTable holds a version's rows as an immutable base (from the last full
// snapshot or compaction) and an overlay of the rows changed since, so a
// delta copies only the overlay, not every row. A deleted row is an empty,
// non-nil slice in the overlay. The base is two arrays, ids in order and
// their rows end to end: 8 bytes per row beside its weights, where a map
// of row slices took about 60, and built by one sort and one copy.
type rowTable struct {
	base *rowBase
	over map[uint64][]float32
	n    int // rows present
}

// rowBase is an immutable set of rows of stride floats, sorted by id.
// Feature ids are hashes, spread evenly, so dir finds a row's
// neighbourhood from the id's top bits: dir[p] is the first index whose
// id starts with p (shift bits dropped), about 16 rows per entry.
type rowBase struct {
	ids    []uint64
	w      []float32 // nil once spilled to file (spill.go)
	stride int
	dir    []int32
	shift  uint

	file       *os.File
	hot        map[uint64][]float32 // spilled rows also kept in memory
	readErrors *metrics.Counter
}

var deleted = []float32{}

func newRowTable() *rowTable {
	return &rowTable{base: &rowBase{}, over: map[uint64][]float32{}}
}

// get returns the row of id, or nil.
func (b *rowBase) get(id uint64) []float32 {
	if r, ok := b.hot[id]; ok {
		return r
	}
	if i, ok := b.find(id); ok {
		return b.row(i)
	}
	return nil
}

// find returns the index of id.
func (b *rowBase) find(id uint64) (int, bool) {
	if len(b.ids) == 0 {
		return 0, false
	}
	p := id >> b.shift
	lo, hi := int(b.dir[p]), int(b.dir[p+1])
	i, ok := slices.BinarySearch(b.ids[lo:hi], id)
	return i + lo, ok
}

// row returns row i, from memory or from the spill file.
func (b *rowBase) row(i int) []float32 {
	if b.file != nil {
		return b.readRow(i)
	}
	return b.w[i*b.stride : (i+1)*b.stride : (i+1)*b.stride]
}

// index builds dir once the ids are in place.
func (b *rowBase) index() *rowBase {
	k := max(bits.Len(uint(len(b.ids)))-4, 0)
	b.shift = 64 - uint(k)
	if k == 0 {
		b.shift = 63 // one entry: every id >> 63 is 0 or 1
		k = 1
	}
	b.dir = make([]int32, 1<<k+1)
	i := 0
	for p := range b.dir {
		for i < len(b.ids) && b.ids[i]>>b.shift < uint64(p) {
			i++
		}
		b.dir[p] = int32(i)
	}
	return b
}

// get returns the row of id, or nil.
func (t *rowTable) get(id uint64) []float32 {
	if r, ok := t.over[id]; ok {
		if len(r) == 0 {
			return nil
		}
		return r
	}
	return t.base.get(id)
}

// has says whether id has a row, without reading it.
func (t *rowTable) has(id uint64) bool {
	if r, ok := t.over[id]; ok {
		return len(r) > 0
	}
	_, ok := t.base.find(id)
	return ok
}

// len is the number of rows present.
func (t *rowTable) len() int { return t.n }

// with returns the table after setting rows ids[i] to rows(i) and deleting
// del; t is unchanged. When the overlay outgrows half the base, the result
// is compacted into a new base.
func (t *rowTable) with(ids []uint64, row func(int) []float32, del []uint64) *rowTable {
	if t.n == 0 && len(t.over) == 0 {
		return fromRows(ids, row)
	}
	n := &rowTable{base: t.base, over: maps.Clone(t.over), n: t.n}
	for i, id := range ids {
		if !n.has(id) {
			n.n++
		}
		n.over[id] = row(i)
	}
	for _, id := range del {
		if n.has(id) {
			n.n--
			n.over[id] = deleted
		}
	}
	if len(n.over) > len(n.base.ids)/2 {
		n.compact()
	}
	return n
}

// fromRows builds a table of the given rows (distinct ids) as one base.
func fromRows(ids []uint64, row func(int) []float32) *rowTable {
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	if !slices.IsSorted(ids) {
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	}
	b := &rowBase{ids: make([]uint64, 0, len(ids))}
	for _, i := range order {
		b.add(ids[i], row(i), len(ids))
	}
	return &rowTable{base: b.index(), over: map[uint64][]float32{}, n: len(b.ids)}
}

// add appends a row (ids in order); the first sizes the weights for n rows.
func (b *rowBase) add(id uint64, r []float32, n int) {
	if b.w == nil {
		b.stride, b.w = len(r), make([]float32, 0, n*len(r))
	}
	b.ids, b.w = append(b.ids, id), append(b.w, r...)
}

// compact merges the overlay into a new base, copying the base's
// unchanged rows a run at a time. When a spilled base cannot be read, t
// stays as it was (base and overlay, still whole) and the failure is
// counted.
func (t *rowTable) compact() {
	b, old := &rowBase{ids: make([]uint64, 0, t.n)}, t.base
	b.w = make([]float32, 0, t.n*max(old.stride, 1))
	keep := func(from, to int) error {
		if from >= to {
			return nil
		}
		b.stride, b.ids = old.stride, append(b.ids, old.ids[from:to]...)
		if old.file == nil {
			b.w = append(b.w, old.w[from*old.stride:to*old.stride]...)
			return nil
		}
		var err error
		b.w, err = old.appendRows(b.w, from, to)
		return err
	}
	i := 0
	for _, id := range slices.Sorted(maps.Keys(t.over)) {
		j, found := slices.BinarySearch(old.ids[i:], id)
		if keep(i, i+j) != nil {
			return
		}
		if i += j; found {
			i++ // replaced or deleted
		}
		if r := t.over[id]; len(r) > 0 {
			b.stride = len(r)
			b.ids, b.w = append(b.ids, id), append(b.w, r...)
		}
	}
	if keep(i, len(old.ids)) != nil {
		return
	}
	t.base, t.over = b.index(), map[uint64][]float32{}
}

// all returns every row (for tests and checks).
func (t *rowTable) all() map[uint64][]float32 {
	out := map[uint64][]float32{}
	for i, id := range t.base.ids {
		out[id] = t.base.row(i)
	}
	for id, r := range t.over {
		if len(r) == 0 {
			delete(out, id)
		} else {
			out[id] = r
		}
	}
	return out
}
