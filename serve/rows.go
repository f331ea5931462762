package serve

import "maps"

// rowTable holds a version's rows as an immutable base (from the last full
// snapshot or compaction) and an overlay of the rows changed since, so a
// delta copies only the overlay, not every row. A deleted row is an empty,
// non-nil slice in the overlay.
type rowTable struct {
	base, over map[uint64][]float32
	n          int // rows present
}

var deleted = []float32{}

func newRowTable() *rowTable {
	return &rowTable{base: map[uint64][]float32{}, over: map[uint64][]float32{}}
}

// get returns the row of id, or nil.
func (t *rowTable) get(id uint64) []float32 {
	if r, ok := t.over[id]; ok {
		if len(r) == 0 {
			return nil
		}
		return r
	}
	return t.base[id]
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
		if n.get(id) == nil {
			n.n++
		}
		n.over[id] = row(i)
	}
	for _, id := range del {
		if n.get(id) != nil {
			n.n--
			n.over[id] = deleted
		}
	}
	if len(n.over) > len(n.base)/2 {
		n.compact()
	}
	return n
}

// fromRows builds a table of the given rows in one sized map.
func fromRows(ids []uint64, row func(int) []float32) *rowTable {
	base := make(map[uint64][]float32, len(ids))
	for i, id := range ids {
		base[id] = row(i)
	}
	return &rowTable{base: base, over: map[uint64][]float32{}, n: len(base)}
}

// compact merges the overlay into a new base.
func (t *rowTable) compact() {
	base := make(map[uint64][]float32, t.n)
	for id, r := range t.base {
		base[id] = r
	}
	for id, r := range t.over {
		if len(r) == 0 {
			delete(base, id)
		} else {
			base[id] = r
		}
	}
	t.base, t.over = base, map[uint64][]float32{}
}

// all returns every row (for tests and checks).
func (t *rowTable) all() map[uint64][]float32 {
	c := &rowTable{base: t.base, over: t.over}
	c.compact()
	return c.base
}
