package serve

import (
	"maps"
	"slices"
	"time"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// Model is one immutable model version as a replica serves it: the rows by
// feature id, the task adapters, and a contiguous matrix of item vectors
// (Dim weights and a bias per item) for exact top-k by dot product.
// Versions built from deltas share every row and item vector they did not
// change with the version before (copy on write).
type Model struct {
	Version int64
	Kind    string
	// FullOffset is the topic offset of the full snapshot this version's
	// chain starts from (-1: unknown): where a restarted replica reads from
	// to rebuild it (a durable rollback).
	FullOffset int64
	Watermark  time.Time
	Applied    int64
	Config     model.ModelConfig
	Progress   map[string]model.TaskProgress
	feat       model.Featurizer
	rows       *rowTable
	tasks      map[string]model.TaskParams
	items      []model.Item
	index      map[string]int
	// itemFeats are the shared-space feature ids of each item and featItems
	// the items each feature id is part of, so a delta recomputes only the
	// vectors of items whose rows changed.
	itemFeats [][]uint64
	featItems map[uint64][]int32
	// matrices holds the item matrix of the shared space under "", or one
	// per task when the model is a set of isolated per-task models.
	matrices map[string][]float32
	// quant holds the int8 form of each matrix under serve.scoring int8
	// (quant.go), nil otherwise.
	quant map[string]*quantMatrix
	// dirty are the items whose vectors this version recomputed in the
	// shared matrix (nil: every item, or per-task matrices).
	dirty   map[int]bool
	popular map[string][]model.Popular
	// memory holds the memory lists by key (memory.go).
	memory map[uint64]*memList
	// bad are the rows that failed a value check, with the reason; a
	// version with bad rows never goes live.
	bad map[uint64]string
}

// NewModel builds the serving form of a full snapshot.
func NewModel(u *snapshot.Update) *Model {
	empty := &Model{rows: newRowTable(), tasks: map[string]model.TaskParams{}, index: map[string]int{},
		featItems: map[uint64][]int32{}, matrices: map[string][]float32{}, popular: map[string][]model.Popular{}}
	return empty.next(u)
}

// next returns the version that u (a delta on m, or a full snapshot on an
// empty model) leads to; m is left untouched.
func (m *Model) next(u *snapshot.Update) *Model {
	man, d := u.Manifest, u.Delta
	n := &Model{
		Version: man.Version, Kind: man.Kind, FullOffset: man.FullOffset, Watermark: man.Watermark, Applied: man.Applied, Config: man.Config,
		Progress: man.Progress, feat: model.Featurizer{Isolated: man.Config.Isolated},
		rows: m.rows.with(d.IDs, d.Row, d.Deleted), tasks: maps.Clone(m.tasks), popular: maps.Clone(m.popular),
		items: m.items, index: m.index, itemFeats: m.itemFeats, featItems: m.featItems, matrices: map[string][]float32{},
		bad: m.bad,
	}
	maps.Copy(n.tasks, d.Tasks)
	maps.Copy(n.popular, d.Popular)
	dirty := n.addItems(d.Items)
	n.memory = n.nextMemory(m.memory, d)
	if n.Config.Isolated {
		for task := range n.tasks {
			n.matrices[task] = n.itemMatrix(task)
		}
		return n
	}
	for _, ids := range [][]uint64{d.IDs, d.Deleted} {
		for _, id := range ids {
			for _, i := range n.featItems[id] {
				dirty[int(i)] = true
			}
		}
	}
	n.matrices[""] = n.updateMatrix(m.matrices[""], dirty)
	n.dirty = dirty
	return n
}

// addItems adds new items and replaces changed ones (copying the item
// tables first), and returns the indexes whose vectors must be computed.
func (n *Model) addItems(items []model.Item) map[int]bool {
	dirty := map[int]bool{}
	if len(items) == 0 {
		return dirty
	}
	n.items, n.index, n.itemFeats = slices.Clone(n.items), maps.Clone(n.index), slices.Clone(n.itemFeats)
	for _, it := range items {
		i, ok := n.index[it.ID]
		if !ok {
			i = len(n.items)
			n.items = append(n.items, it)
			n.itemFeats = append(n.itemFeats, nil)
			n.index[it.ID] = i
		}
		n.items[i] = it
		n.itemFeats[i] = n.feat.Item(nil, "", it.ID, it.Meta)
		dirty[i] = true
	}
	n.featItems = make(map[uint64][]int32, len(n.featItems))
	for i, ids := range n.itemFeats {
		for _, id := range ids {
			n.featItems[id] = append(n.featItems[id], int32(i))
		}
	}
	return dirty
}

// itemFeature says whether id is a feature of an item of m.
func (m *Model) itemFeature(id uint64) bool {
	_, ok := m.featItems[id]
	return ok
}

// updateMatrix copies the previous item matrix and recomputes the vectors
// of the dirty items.
func (n *Model) updateMatrix(prev []float32, dirty map[int]bool) []float32 {
	d := n.Config.Dim + 1
	if len(dirty) == 0 && len(prev) == len(n.items)*d {
		return prev
	}
	out := make([]float32, len(n.items)*d)
	copy(out, prev)
	rows := make([][]float32, 0, 16)
	for i := range dirty {
		rows = rows[:0]
		for _, id := range n.itemFeats[i] {
			rows = append(rows, n.rows.get(id))
		}
		model.ItemVector(out[i*d:(i+1)*d], rows)
	}
	return out
}

// itemMatrix computes the vector of every item in the space of task.
func (m *Model) itemMatrix(task string) []float32 {
	d := m.Config.Dim + 1
	out := make([]float32, len(m.items)*d)
	var ids []uint64
	var rows [][]float32
	for i, it := range m.items {
		ids = m.feat.Item(ids[:0], task, it.ID, it.Meta)
		rows = rows[:0]
		for _, id := range ids {
			rows = append(rows, m.rows.get(id))
		}
		model.ItemVector(out[i*d:(i+1)*d], rows)
	}
	return out
}

// matrix returns the item matrix scoring for task.
func (m *Model) matrix(task string) []float32 {
	if m.Config.Isolated {
		return m.matrices[task]
	}
	return m.matrices[""]
}
