package snapshot

import (
	"maps"
	"math"
	"slices"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Delta is the content of a snapshot: a full snapshot is the delta from an
// empty model. It holds the rows that changed since the base (sorted by
// id), the rows that disappeared, the task adapters and popularity lists
// that changed, and the items that are new or whose metadata changed.
// Optimiser state is never part of it.
type Delta struct {
	Dim     int
	IDs     []uint64
	Weights []float32 // row i is Weights[i*(Dim+1):(i+1)*(Dim+1)]
	Deleted []uint64
	Tasks   map[string]model.TaskParams
	Items   []model.Item
	Popular map[string][]model.Popular
	// Memory holds the memory lists that changed (sorted by key), whole;
	// MemoryDeleted the keys of lists that disappeared (sorted).
	Memory        []model.MemoryList
	MemoryDeleted []uint64
}

// Row returns the weights of changed row i.
func (d *Delta) Row(i int) []float32 {
	n := d.Dim + 1
	return d.Weights[i*n : (i+1)*n : (i+1)*n]
}

// Diff returns what changed from prev to cur; a nil prev gives the whole
// model. Rows are compared bit for bit, so applying the delta to prev gives
// exactly cur.
func Diff(prev, cur *model.Capture) *Delta {
	d := &Delta{Dim: cur.Config.Dim, Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}}
	if prev == nil {
		prev = &model.Capture{}
	}
	diffRows(d, prev, cur)
	diffMemory(d, prev.Memory, cur.Memory)
	for name, tp := range cur.Tasks {
		if old, ok := prev.Tasks[name]; !ok || !sameTask(old, tp) {
			d.Tasks[name] = tp
		}
	}
	old := make(map[string]stream.ItemMeta, len(prev.Items))
	for _, it := range prev.Items {
		old[it.ID] = it.Meta
	}
	for _, it := range cur.Items {
		if m, ok := old[it.ID]; !ok || !sameMeta(m, it.Meta) {
			d.Items = append(d.Items, it)
		}
	}
	for task, list := range cur.Popular {
		if !slices.Equal(prev.Popular[task], list) {
			d.Popular[task] = list
		}
	}
	return d
}

// diffRows merges the sorted row ids of prev and cur.
func diffRows(d *Delta, prev, cur *model.Capture) {
	n := cur.Config.Dim + 1
	i, j := 0, 0
	for i < len(prev.IDs) || j < len(cur.IDs) {
		switch {
		case j == len(cur.IDs) || (i < len(prev.IDs) && prev.IDs[i] < cur.IDs[j]):
			d.Deleted = append(d.Deleted, prev.IDs[i])
			i++
		case i == len(prev.IDs) || cur.IDs[j] < prev.IDs[i]:
			d.IDs = append(d.IDs, cur.IDs[j])
			d.Weights = append(d.Weights, cur.Weights[j*n:(j+1)*n]...)
			j++
		default:
			w := cur.Weights[j*n : (j+1)*n]
			if !sameFloats(prev.Weights[i*n:(i+1)*n], w) {
				d.IDs = append(d.IDs, cur.IDs[j])
				d.Weights = append(d.Weights, w...)
			}
			i++
			j++
		}
	}
}

// Apply returns base with d applied, leaving base untouched. Versions and
// offsets are not part of a delta; the caller sets them from the manifest.
func Apply(base *model.Capture, d *Delta) *model.Capture {
	out := &model.Capture{Config: base.Config, Tasks: maps.Clone(base.Tasks), Popular: maps.Clone(base.Popular)}
	if out.Tasks == nil {
		out.Tasks = map[string]model.TaskParams{}
	}
	if out.Popular == nil {
		out.Popular = map[string][]model.Popular{}
	}
	applyRows(out, base, d)
	out.Memory = applyMemory(base.Memory, d)
	maps.Copy(out.Tasks, d.Tasks)
	maps.Copy(out.Popular, d.Popular)
	items := map[string]int{}
	out.Items = slices.Clone(base.Items)
	for i, it := range out.Items {
		items[it.ID] = i
	}
	for _, it := range d.Items {
		if i, ok := items[it.ID]; ok {
			out.Items[i] = it
		} else {
			out.Items = append(out.Items, it)
		}
	}
	slices.SortFunc(out.Items, func(a, b model.Item) int { return cmpString(a.ID, b.ID) })
	return out
}

// applyRows merges base's sorted rows with the delta's changed and deleted
// rows (both sorted).
func applyRows(out, base *model.Capture, d *Delta) {
	n := d.Dim + 1
	deleted := map[uint64]bool{}
	for _, id := range d.Deleted {
		deleted[id] = true
	}
	i, j := 0, 0
	for i < len(base.IDs) || j < len(d.IDs) {
		switch {
		case j == len(d.IDs) || (i < len(base.IDs) && base.IDs[i] < d.IDs[j]):
			if !deleted[base.IDs[i]] {
				out.IDs = append(out.IDs, base.IDs[i])
				out.Weights = append(out.Weights, base.Weights[i*n:(i+1)*n]...)
			}
			i++
		default:
			if i < len(base.IDs) && base.IDs[i] == d.IDs[j] {
				i++
			}
			out.IDs = append(out.IDs, d.IDs[j])
			out.Weights = append(out.Weights, d.Weights[j*n:(j+1)*n]...)
			j++
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func sameTask(a, b model.TaskParams) bool {
	return math.Float32bits(a.Bias) == math.Float32bits(b.Bias) && sameFloats(a.Scale, b.Scale) && sameFloats(a.Shift, b.Shift) &&
		maps.Equal(a.Memory, b.Memory)
}

func sameMeta(a, b stream.ItemMeta) bool {
	return a.Type == b.Type && a.Title == b.Title && slices.Equal(a.Categories, b.Categories)
}

// UpdateOf returns the update from prev to c as a subscriber hands it over
// (float32 rows): a full snapshot when prev is nil, else a delta. It lets a
// trainer feed a replica in one process and tests build chains.
func UpdateOf(prev, c *model.Capture) *Update {
	d := Diff(prev, c)
	m := &Manifest{Version: c.Version, Kind: KindFull, FullVersion: c.Version, FullOffset: -1, Encoding: EncodingFloat32,
		Config: c.Config, Offsets: c.Offsets, Watermark: unixMilli(c.Watermark), Applied: c.Applied,
		Rows: len(d.IDs), Deleted: len(d.Deleted), Tasks: len(d.Tasks), Items: len(d.Items), Memory: len(d.Memory), TotalRows: len(c.IDs),
		Progress: c.Progress}
	if prev != nil {
		m.Kind, m.BaseVersion = KindDelta, prev.Version
	}
	return &Update{Manifest: m, Delta: d}
}
