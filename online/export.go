package online

import (
	"maps"
	"slices"
)

// rowExport is the trainer's rows as the last capture saw them: ids in
// order and their weights, shared read-only with that capture. The next
// capture merges only the rows committed since (changed) into a new copy,
// so taking a snapshot costs a copy of the model plus a sort of what
// changed, not a sort and a scattered read of every row under the
// trainer's lock. With a memory bound (paging) rows live in Pebble and
// every capture scans it instead: the export is then not kept.
type rowExport struct {
	valid   bool
	ids     []uint64
	weights []float32
	changed map[uint64]struct{} // written or deleted since the last capture
}

// record notes the rows a commit writes or deletes.
func (e *rowExport) record(r *rows) {
	if !e.valid {
		return
	}
	if e.changed == nil {
		e.changed = map[uint64]struct{}{}
	}
	for l := range r.lanes {
		ln := &r.lanes[l]
		for id := range ln.deleted {
			e.changed[id] = struct{}{}
		}
		ln.tab.eachDirty(func(slot int32) { e.changed[ln.tab.ids[slot]] = struct{}{} })
	}
}

// set makes ids and weights (sorted, as a capture holds them) the export.
func (e *rowExport) set(ids []uint64, weights []float32) {
	e.valid, e.ids, e.weights = true, ids, weights
	clear(e.changed)
}

// update returns a new export: the previous one with every changed row
// replaced by its weights in r, or removed when r no longer holds it.
// The previous arrays are left untouched (a capture still holds them).
func (e *rowExport) update(r *rows) ([]uint64, []float32) {
	d := r.lanes[0].tab.dim + 1
	ch := slices.Sorted(maps.Keys(e.changed))
	ids := make([]uint64, 0, len(e.ids)+len(ch))
	w := make([]float32, 0, (len(e.ids)+len(ch))*d)
	i := 0
	for _, id := range ch {
		j, found := slices.BinarySearch(e.ids[i:], id)
		j += i
		ids, w = append(ids, e.ids[i:j]...), append(w, e.weights[i*d:j*d]...)
		if i = j; found {
			i++
		}
		if slot, ok := r.find(id); ok {
			ids, w = append(ids, id), append(w, r.w(slot)...)
		}
	}
	ids, w = append(ids, e.ids[i:]...), append(w, e.weights[i*d:]...)
	e.set(ids, w)
	return ids, w
}
