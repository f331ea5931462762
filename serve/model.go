package serve

import (
	"time"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/snapshot"
)

// Model is one immutable model version as a replica serves it: the rows by
// feature id, the task adapters, and a contiguous matrix of item vectors
// (Dim weights and a bias per item) for exact top-k by dot product.
type Model struct {
	Version   int64
	Watermark time.Time
	Applied   int64
	Config    online.ModelConfig
	feat      online.Featurizer
	rows      map[uint64][]float32
	tasks     map[string]online.TaskParams
	items     []online.Item
	index     map[string]int
	// matrices holds the item matrix of the shared space under "", or one
	// per task when the model is a set of isolated per-task models.
	matrices map[string][]float32
	popular  map[string][]online.Popular
}

// NewModel builds the serving form of a captured model.
func NewModel(m *snapshot.Manifest, c *online.Capture) *Model {
	d := c.Config.Dim + 1
	mod := &Model{
		Version: c.Version, Watermark: m.Watermark, Applied: c.Applied, Config: c.Config,
		feat: online.Featurizer{Isolated: c.Config.Isolated}, rows: make(map[uint64][]float32, len(c.IDs)),
		tasks: c.Tasks, items: c.Items, index: make(map[string]int, len(c.Items)),
		matrices: map[string][]float32{}, popular: c.Popular,
	}
	for i, id := range c.IDs {
		mod.rows[id] = c.Weights[i*d : (i+1)*d : (i+1)*d]
	}
	for i, it := range c.Items {
		mod.index[it.ID] = i
	}
	if !c.Config.Isolated {
		mod.matrices[""] = mod.itemMatrix("")
	} else {
		for task := range c.Tasks {
			mod.matrices[task] = mod.itemMatrix(task)
		}
	}
	return mod
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
			rows = append(rows, m.rows[id])
		}
		online.ItemVector(out[i*d:(i+1)*d], rows)
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
