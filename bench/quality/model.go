package quality

import (
	"fmt"
	"os"
	"time"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// scorer scores (context, item) pairs of a task: the trained model through
// the serving functions, or per-task popularity.
type scorer interface {
	// items returns the score of every catalog item for ex's context.
	items(ex *stream.Example, dst []float32) []float32
	// pair returns the score of ex's context and item.
	pair(ex *stream.Example) float32
}

// trained is a captured model scored exactly as serving scores it.
type trained struct {
	cap  *model.Capture
	feat model.Featurizer
	rows map[uint64][]float32
	dim  int
	// item matrices per task (shared mode: identical across tasks)
	itemVecs map[string][]float32
	cat      *catalog
}

// train learns from exs in order with cfg and returns the captured model.
func train(cfg model.ModelConfig, exs []stream.Example, cat *catalog) (*trained, error) {
	dir, err := os.MkdirTemp("", "unirec-quality")
	if err != nil {
		return nil, fmt.Errorf("cannot create trainer dir: %w", err)
	}
	defer os.RemoveAll(dir)
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: dir, CommitInterval: time.Hour})
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	for i := range exs {
		if err := tr.Apply(&exs[i]); err != nil {
			return nil, err
		}
	}
	c, err := tr.Capture()
	if err != nil {
		return nil, err
	}
	m := &trained{cap: c, feat: model.Featurizer{Isolated: cfg.Isolated}, rows: map[uint64][]float32{},
		dim: cfg.Dim, itemVecs: map[string][]float32{}, cat: cat}
	d := cfg.Dim + 1
	for i, id := range c.IDs {
		m.rows[id] = c.Weights[i*d : (i+1)*d]
	}
	return m, nil
}

func (m *trained) lookup(ids []uint64) [][]float32 {
	out := make([][]float32, len(ids))
	for i, id := range ids {
		out[i] = m.rows[id] // nil: a feature the model has no row for
	}
	return out
}

// itemMatrix returns the vectors (dim+1, last the bias) of every catalog
// item for a task.
func (m *trained) itemMatrix(task string) []float32 {
	if v, ok := m.itemVecs[task]; ok {
		return v
	}
	d := m.dim + 1
	v := make([]float32, len(m.cat.ids)*d)
	for i, id := range m.cat.ids {
		model.ItemVector(v[i*d:(i+1)*d], m.lookup(m.feat.Item(nil, task, id, m.cat.meta[i])))
	}
	m.itemVecs[task] = v
	return v
}

func (m *trained) context(ex *stream.Example) ([]float32, float32) {
	tp := model.NewTaskParams(m.dim)
	if p, ok := m.cap.Tasks[ex.Task]; ok {
		tp = &p
	}
	c := make([]float32, m.dim)
	bias := model.ContextVector(c, nil, tp, m.lookup(m.feat.Context(nil, ex.Task, ex.Context, time.UnixMilli(ex.EventTime))))
	return c, bias
}

func (m *trained) items(ex *stream.Example, dst []float32) []float32 {
	c, bias := m.context(ex)
	v := m.itemMatrix(ex.Task)
	d := m.dim + 1
	dst = dst[:0]
	for i := range m.cat.ids {
		dst = append(dst, model.Logit(c, bias, v[i*d:(i+1)*d]))
	}
	return dst
}

func (m *trained) pair(ex *stream.Example) float32 {
	c, bias := m.context(ex)
	v := make([]float32, m.dim+1)
	model.ItemVector(v, m.lookup(m.feat.Item(nil, ex.Task, ex.ItemID, ex.Item)))
	return model.Logit(c, bias, v)
}

// popularity scores an item by the summed weight of its positives in the
// task during training: the per-task popularity baseline.
type popularity struct {
	perTask map[string][]float32
	cat     *catalog
}

func countPopularity(exs []stream.Example, cat *catalog) *popularity {
	p := &popularity{perTask: map[string][]float32{}, cat: cat}
	for i := range exs {
		ex := &exs[i]
		if ex.Label == 0 {
			continue
		}
		s := p.perTask[ex.Task]
		if s == nil {
			s = make([]float32, len(cat.ids))
			p.perTask[ex.Task] = s
		}
		s[cat.index[ex.ItemID]] += ex.Weight
	}
	return p
}

func (p *popularity) items(ex *stream.Example, dst []float32) []float32 {
	s := p.perTask[ex.Task]
	if s == nil {
		return append(dst[:0], make([]float32, len(p.cat.ids))...)
	}
	return append(dst[:0], s...)
}

func (p *popularity) pair(ex *stream.Example) float32 {
	if s := p.perTask[ex.Task]; s != nil {
		return s[p.cat.index[ex.ItemID]]
	}
	return 0
}
