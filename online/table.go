package online

// table holds the rows that are in memory: one slab of float32 (weights,
// bias, optimizer accumulators per row), an index from feature id to slot,
// and per-slot bookkeeping (last use in event time, dirty since the last
// commit, commit epoch of the last touch for eviction). Slices returned by
// w and acc are valid until the next insert, which may grow the slab.
type table struct {
	dim, stride int // stride: dim weights + bias + accumulators
	index       map[uint64]int32
	ids         []uint64
	data        []float32
	last        []int64
	touched     []uint32
	dirty       []bool
	live        []bool
	dirtyList   []int32
	free        []int32
	epoch       uint32
	// hold keeps removed slots in held, out of free, until release: a
	// mini-batch still holds the slots of rows expired during its step.
	hold bool
	held []int32
}

func newTable(dim, accN int) *table {
	return &table{dim: dim, stride: dim + 1 + accN, index: map[uint64]int32{}}
}

func (tb *table) len() int { return len(tb.index) }

// w returns the weights and bias of a slot.
func (tb *table) w(slot int32) []float32 {
	o := int(slot) * tb.stride
	return tb.data[o : o+tb.dim+1 : o+tb.dim+1]
}

// acc returns the optimizer accumulators of a slot.
func (tb *table) acc(slot int32) []float32 {
	o := int(slot) * tb.stride
	return tb.data[o+tb.dim+1 : o+tb.stride : o+tb.stride]
}

// values returns weights, bias and accumulators of a slot.
func (tb *table) values(slot int32) []float32 {
	o := int(slot) * tb.stride
	return tb.data[o : o+tb.stride : o+tb.stride]
}

// insert adds id with vals (len stride; nil for zeros) and returns its slot.
func (tb *table) insert(id uint64, vals []float32, last int64) int32 {
	var slot int32
	if n := len(tb.free); n > 0 {
		slot = tb.free[n-1]
		tb.free = tb.free[:n-1]
		tb.ids[slot], tb.last[slot], tb.touched[slot], tb.dirty[slot], tb.live[slot] = id, last, tb.epoch, false, true
		clear(tb.values(slot))
	} else {
		slot = int32(len(tb.ids))
		tb.ids = append(tb.ids, id)
		tb.last = append(tb.last, last)
		tb.touched = append(tb.touched, tb.epoch)
		tb.dirty = append(tb.dirty, false)
		tb.live = append(tb.live, true)
		tb.data = append(tb.data, make([]float32, tb.stride)...)
	}
	if vals != nil {
		copy(tb.values(slot), vals)
	}
	tb.index[id] = slot
	return slot
}

// touch records a use at event time now and marks the slot dirty.
func (tb *table) touch(slot int32, now int64) {
	if now > tb.last[slot] {
		tb.last[slot] = now
	}
	tb.touched[slot] = tb.epoch
	if !tb.dirty[slot] {
		tb.dirty[slot] = true
		tb.dirtyList = append(tb.dirtyList, slot)
	}
}

// remove drops a slot from memory (its id's fate on disk is the caller's).
func (tb *table) remove(slot int32) {
	delete(tb.index, tb.ids[slot])
	tb.dirty[slot], tb.live[slot] = false, false
	if tb.hold {
		tb.held = append(tb.held, slot)
	} else {
		tb.free = append(tb.free, slot)
	}
}

// release frees the slots removed while holding and stops holding.
func (tb *table) release() {
	tb.free = append(tb.free, tb.held...)
	tb.held, tb.hold = tb.held[:0], false
}

// eachDirty calls fn for every dirty slot.
func (tb *table) eachDirty(fn func(slot int32)) {
	for _, s := range tb.dirtyList {
		if tb.dirty[s] {
			fn(s)
		}
	}
}

// committed marks every slot clean and starts a new epoch.
func (tb *table) committed() {
	for _, s := range tb.dirtyList {
		tb.dirty[s] = false
	}
	tb.dirtyList = tb.dirtyList[:0]
	tb.epoch++
}

// evict removes clean slots until at most target remain, least recently
// touched epochs first. It returns how many it removed.
func (tb *table) evict(target int) int {
	n := 0
	for pass := 0; pass < 2 && tb.len() > target; pass++ {
		for s := range tb.ids {
			if tb.len() <= target {
				break
			}
			slot := int32(s)
			if !tb.live[slot] || tb.dirty[slot] || (pass == 0 && tb.touched[slot]+1 >= tb.epoch) {
				continue
			}
			tb.remove(slot)
			n++
		}
	}
	return n
}
