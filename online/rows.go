package online

// rows holds the trainer's rows in rowLanes lanes by feature id: each lane
// has a table, admission counters and expiries of its own, and a feature
// always falls in the same lane (its id's top bits: ids are hashes). So a
// mini-batch's lookups run lane by lane on every worker (step.go): each
// lane takes the step's ids of its own in log order, which is all the
// order its rows, counters and slots depend on. The lane count is fixed,
// never the number of workers, so the model does not depend on the
// workers either. A row's slot names its lane and its slot in the lane's
// table: slot = local<<laneBits | lane.
type rows struct {
	lanes  [rowLanes]lane
	ttl    int64 // ms; 0 never expires
	stride int
}

// lane is the rows of one lane and what is known of its features.
type lane struct {
	tab     table
	adm     *admission
	deleted map[uint64]struct{} // rows expired since the last commit
	vals    []float32           // a row being paged in
	_       [64]byte            // lanes are written by different cores
}

const (
	laneBits = 4
	rowLanes = 1 << laneBits
)

func laneOf(id uint64) int { return int(id >> (64 - laneBits)) }

func newRows(dim, accN, minCount int, ttl int64) *rows {
	r := &rows{ttl: ttl}
	for i := range r.lanes {
		r.lanes[i] = lane{tab: *newTable(dim, accN), adm: newAdmission(minCount, ttl), deleted: map[uint64]struct{}{}}
		r.lanes[i].vals = make([]float32, r.lanes[i].tab.stride)
	}
	r.stride = r.lanes[0].tab.stride
	return r
}

// at returns the table of slot and the slot in it.
func (r *rows) at(slot int32) (*table, int32) {
	return &r.lanes[slot&(rowLanes-1)].tab, slot >> laneBits
}

func globalSlot(l int, local int32) int32 { return local<<laneBits | int32(l) }

// w returns the weights and bias of a slot.
func (r *rows) w(slot int32) []float32 {
	tb, s := r.at(slot)
	return tb.w(s)
}

// acc returns the optimizer accumulators of a slot.
func (r *rows) acc(slot int32) []float32 {
	tb, s := r.at(slot)
	return tb.acc(s)
}

func (r *rows) touch(slot int32, now int64) {
	tb, s := r.at(slot)
	tb.touch(s, now)
}

// holds says whether slot still holds the live row of id, unexpired at
// watermark wm: what a lookup of id would find, so it may be reused.
func (r *rows) holds(slot int32, id uint64, wm int64) bool {
	tb, s := r.at(slot)
	return tb.live[s] && tb.ids[s] == id && !expired(r.ttl, tb.last[s], wm)
}

// len is the number of rows in memory.
func (r *rows) len() int {
	n := 0
	for i := range r.lanes {
		n += r.lanes[i].tab.len()
	}
	return n
}

// slots bounds every slot: each is below it.
func (r *rows) slots() int {
	n := 0
	for i := range r.lanes {
		n = max(n, len(r.lanes[i].tab.ids))
	}
	return n << laneBits
}

// find returns the slot of id, false when it has no row in memory.
func (r *rows) find(id uint64) (int32, bool) {
	l := laneOf(id)
	s, ok := r.lanes[l].tab.index[id]
	return globalSlot(l, s), ok
}

// each calls fn for every live row.
func (r *rows) each(fn func(slot int32, id uint64)) {
	for l := range r.lanes {
		tb := &r.lanes[l].tab
		for s, id := range tb.ids {
			if tb.live[s] {
				fn(globalSlot(l, int32(s)), id)
			}
		}
	}
}

// hold keeps the slots removed from now on out of use until release: a
// mini-batch still holds the slots of rows expired during its step.
func (r *rows) hold() {
	for i := range r.lanes {
		r.lanes[i].tab.hold = true
	}
}

func (r *rows) release() {
	for i := range r.lanes {
		r.lanes[i].tab.release()
	}
}

// committed marks every row, counter and expiry written.
func (r *rows) committed() {
	for i := range r.lanes {
		ln := &r.lanes[i]
		ln.tab.committed()
		clear(ln.deleted)
		clear(ln.adm.dirty)
	}
}

// evict removes clean rows, least recently touched epochs first, until at
// most target remain, each lane keeping its rows' share of target (lanes
// hold about as many rows: ids are hashes). It returns how many it
// removed.
func (r *rows) evict(target int) int {
	total, n := r.len(), 0
	if total == 0 {
		return 0
	}
	for i := range r.lanes {
		tb := &r.lanes[i].tab
		n += tb.evict(int(int64(target) * int64(tb.len()) / int64(total)))
	}
	return n
}

// pending is the number of features seen and not admitted yet.
func (r *rows) pending() int {
	n := 0
	for i := range r.lanes {
		n += len(r.lanes[i].adm.counts)
	}
	return n
}

// sweep expires every row and sightings counter unused for the TTL at
// watermark, calling expire for each expired row.
func (r *rows) sweep(watermark int64, expire func(ln *lane, id uint64)) {
	for l := range r.lanes {
		ln := &r.lanes[l]
		for s, id := range ln.tab.ids {
			slot := int32(s)
			if ln.tab.live[slot] && expired(r.ttl, ln.tab.last[slot], watermark) {
				ln.tab.remove(slot)
				expire(ln, id)
			}
		}
		ln.adm.sweep(watermark)
	}
}
