package serve

import (
	"cmp"
	"encoding/binary"
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
// id starts with p (shift bits dropped), about 16 rows per entry in
// memory, at most 1<<spillDirBits entries once spilled.
type rowBase struct {
	ids    []uint64  // nil once spilled to file (spill.go)
	w      []float32 // nil once spilled
	n      int       // rows
	stride int
	dir    []int32
	shift  uint

	file       *os.File
	idsAt      int64                // offset of the ids in file
	hot        map[uint64][]float32 // spilled rows also kept in memory
	readErrors *metrics.Counter
}

var deleted = []float32{}

// memDirBits bounds the directory of a base in memory (about 16 rows an
// entry below it); spillDirBits that of a spilled one, whose ids are read
// from the file a directory entry at a time: 65,537 entries (256 KiB) at
// any size, so the heap does not grow with the rows.
const (
	memDirBits   = 32
	spillDirBits = 16
)

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
	if b.n == 0 {
		return 0, false
	}
	p := id >> b.shift
	lo, hi := int(b.dir[p]), int(b.dir[p+1])
	if b.file != nil {
		buf, err := b.readIDs(nil, lo, hi)
		if err != nil {
			return 0, false
		}
		i, ok := searchIDs(buf, id)
		return i + lo, ok
	}
	i, ok := slices.BinarySearch(b.ids[lo:hi], id)
	return i + lo, ok
}

// findAll says of each of ids whether the base holds it; a spilled base
// reads each directory entry's ids once, however many ids fall in it.
func (b *rowBase) findAll(ids []uint64) []bool {
	in := make([]bool, len(ids))
	if b.n == 0 {
		return in
	}
	if b.file == nil {
		for i, id := range ids {
			_, in[i] = b.find(id)
		}
		return in
	}
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int { return cmp.Compare(ids[x], ids[y]) })
	if len(ids) > b.n/512 {
		b.scanAll(ids, order, in)
		return in
	}
	var buf []byte
	cur, ok := uint64(0), false
	for _, i := range order {
		if p := ids[i] >> b.shift; !ok || p != cur {
			var err error
			if buf, err = b.readIDs(buf[:0], int(b.dir[p]), int(b.dir[p+1])); err != nil {
				buf = buf[:0] // counted; its ids are taken as absent
			}
			cur, ok = p, true
		}
		_, in[i] = searchIDs(buf, ids[i])
	}
	return in
}

// row returns row i, from memory or from the spill file.
func (b *rowBase) row(i int) []float32 {
	if b.file != nil {
		return b.readRow(i)
	}
	return b.w[i*b.stride : (i+1)*b.stride : (i+1)*b.stride]
}

// scanAll is findAll for many ids (order sorts them): one sequential read
// of the spilled ids, merged with them, costs less than a read per
// directory entry (a delta of 1% of the rows touches most entries).
func (b *rowBase) scanAll(ids []uint64, order []int, in []bool) {
	var buf []byte
	k := 0
	const per = 1 << 17 // ids a read
	for from := 0; from < b.n && k < len(order); from += per {
		var err error
		if buf, err = b.readIDs(buf, from, min(b.n, from+per)); err != nil {
			return // counted; the rest are taken as absent
		}
		last := binary.LittleEndian.Uint64(buf[len(buf)-8:])
		for ; k < len(order) && ids[order[k]] <= last; k++ {
			_, in[order[k]] = searchIDs(buf, ids[order[k]])
		}
	}
}

// index builds dir once the ids are in place, of at most 1<<maxBits
// entries.
func (b *rowBase) index(maxBits int) *rowBase {
	k := min(max(bits.Len(uint(len(b.ids)))-4, 0), maxBits)
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

// present says whether id has a row, given whether the base holds it
// (findAll).
func (t *rowTable) present(id uint64, inBase bool) bool {
	if r, ok := t.over[id]; ok {
		return len(r) > 0
	}
	return inBase
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
	inIDs, inDel := t.base.findAll(ids), t.base.findAll(del)
	for i, id := range ids {
		if !n.present(id, inIDs[i]) {
			n.n++
		}
		n.over[id] = row(i)
	}
	for i, id := range del {
		if n.present(id, inDel[i]) {
			n.n--
			n.over[id] = deleted
		}
	}
	if len(n.over) > n.base.n/2 {
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
	return &rowTable{base: b.index(memDirBits), over: map[uint64][]float32{}, n: b.n}
}

// add appends a row (ids in order); the first sizes the weights for n rows.
func (b *rowBase) add(id uint64, r []float32, n int) {
	if b.w == nil {
		b.stride, b.w = len(r), make([]float32, 0, n*len(r))
	}
	b.ids, b.w, b.n = append(b.ids, id), append(b.w, r...), b.n+1
}

// compact merges the overlay into a new base, copying the base's
// unchanged rows a run at a time. When a spilled base cannot be read, t
// stays as it was (base and overlay, still whole) and the failure is
// counted.
func (t *rowTable) compact() {
	old := t.base
	oldIDs, err := old.allIDs()
	if err != nil {
		return
	}
	b := &rowBase{ids: make([]uint64, 0, t.n)}
	b.w = make([]float32, 0, t.n*max(old.stride, 1))
	keep := func(from, to int) error {
		if from >= to {
			return nil
		}
		b.stride, b.ids, b.n = old.stride, append(b.ids, oldIDs[from:to]...), b.n+to-from
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
		j, found := slices.BinarySearch(oldIDs[i:], id)
		if keep(i, i+j) != nil {
			return
		}
		if i += j; found {
			i++ // replaced or deleted
		}
		if r := t.over[id]; len(r) > 0 {
			b.stride = len(r)
			b.ids, b.w, b.n = append(b.ids, id), append(b.w, r...), b.n+1
		}
	}
	if keep(i, len(oldIDs)) != nil {
		return
	}
	t.base, t.over = b.index(memDirBits), map[uint64][]float32{}
}

// all returns every row (for tests and checks).
func (t *rowTable) all() map[uint64][]float32 {
	out := map[uint64][]float32{}
	ids, _ := t.base.allIDs()
	for i, id := range ids {
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
