package quality

import (
	"fmt"
	"os"
	"strings"
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
	memory   map[uint64]model.MemoryList
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
		dim: cfg.Dim, itemVecs: map[string][]float32{}, cat: cat, memory: map[uint64]model.MemoryList{}}
	for _, l := range c.Memory {
		m.memory[l.Key] = l
	}
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

func (m *trained) context(ex *stream.Example) ([]float32, float32, *model.TaskParams) {
	tp := model.NewTaskParams(m.dim)
	if p, ok := m.cap.Tasks[ex.Task]; ok {
		tp = &p
	}
	c := make([]float32, m.dim)
	bias := model.ContextVector(c, nil, tp, m.lookup(m.feat.Context(nil, ex.Task, ex.Context, time.UnixMilli(ex.EventTime))))
	return c, bias, tp
}

// memoryTerms adds the memory term of ex's context to the scores of the
// catalog items its lists name, as serving does.
func (m *trained) memoryTerms(ex *stream.Example, tp *model.TaskParams, add func(item string, z float32)) {
	cfg := m.cap.Config.Memory
	for _, k := range cfg.MemoryKeys(nil, ex.Task, ex.Context) {
		l, ok := m.memory[k.ID]
		if !ok {
			continue
		}
		decay := model.Decay(l.Ref, ex.EventTime, cfg.HalfLife)
		for _, it := range l.Items {
			add(it.Item, cfg.RankTerm(tp.Memory[k.Field], it.Count, decay))
		}
	}
}

func (m *trained) items(ex *stream.Example, dst []float32) []float32 {
	c, bias, tp := m.context(ex)
	v := m.itemMatrix(ex.Task)
	d := m.dim + 1
	dst = dst[:0]
	for i := range m.cat.ids {
		dst = append(dst, model.Logit(c, bias, v[i*d:(i+1)*d]))
	}
	m.memoryTerms(ex, tp, func(item string, z float32) {
		if i, ok := m.cat.index[item]; ok {
			dst[i] += z
		}
	})
	return dst
}

func (m *trained) pair(ex *stream.Example) float32 {
	c, bias, tp := m.context(ex)
	v := make([]float32, m.dim+1)
	model.ItemVector(v, m.lookup(m.feat.Item(nil, ex.Task, ex.ItemID, ex.Item)))
	z := model.Logit(c, bias, v)
	m.memoryTerms(ex, tp, func(item string, w float32) {
		if item == ex.ItemID {
			z += w
		}
	})
	return z
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

// contextPopularity scores an item by the summed weight of its positives
// in the example's context value (the canvas' non-user, non-sentinel
// context fields joined; the query by its lower-cased tokens) during
// training, backed by its popularity across all tasks: the per-context
// counter a user would ship instead of a model.
type contextPopularity struct {
	perContext map[string]map[int]float32
	global     []float32
	cat        *catalog
}

func contextKey(ex *stream.Example) string {
	key := ex.Task
	for _, f := range ex.Context {
		if f.Name == "user_id" || f.Value == "" || f.Value == "<none>" {
			continue
		}
		v := f.Value
		if f.Name == "query" {
			v = strings.Join(model.Tokens(v), " ")
		}
		key += "\x00" + f.Name + "=" + v
	}
	return key
}

func countContextPopularity(exs []stream.Example, cat *catalog) *contextPopularity {
	p := &contextPopularity{perContext: map[string]map[int]float32{}, global: make([]float32, len(cat.ids)), cat: cat}
	for i := range exs {
		ex := &exs[i]
		j, ok := cat.index[ex.ItemID]
		if ex.Label == 0 || !ok {
			continue
		}
		k := contextKey(ex)
		if p.perContext[k] == nil {
			p.perContext[k] = map[int]float32{}
		}
		p.perContext[k][j] += ex.Weight
		p.global[j] += ex.Weight
	}
	var top float32
	for _, g := range p.global {
		top = max(top, g)
	}
	for j := range p.global {
		p.global[j] /= top + 1 // below one engagement in context
	}
	return p
}

func (p *contextPopularity) items(ex *stream.Example, dst []float32) []float32 {
	dst = append(dst[:0], p.global...)
	for j, n := range p.perContext[contextKey(ex)] {
		dst[j] += n
	}
	return dst
}

func (p *contextPopularity) pair(ex *stream.Example) float32 {
	j, ok := p.cat.index[ex.ItemID]
	if !ok {
		return 0
	}
	return p.global[j] + p.perContext[contextKey(ex)][j]
}
