package online

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/VictoriaMetrics/metrics"

	"github.com/unirec/unirec/online/model"
)

// progressWindow is how many recent examples per task the windowed metrics
// (AUC, calibration) cover.
const progressWindow = 10_000

// Progress holds progressive-validation metrics: every example is scored
// before the model learns from it, so these are honest out-of-sample
// figures. Safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	tasks map[string]*taskProgress
	set   *metrics.Set
}

type taskProgress struct {
	count   int64
	weight  float64
	logloss float64 // weighted sum
	// ring of the most recent predictions
	pred, label []float32
	next        int
}

// NewProgress returns an empty Progress that registers its gauges in set.
func NewProgress(set *metrics.Set) *Progress {
	return &Progress{tasks: map[string]*taskProgress{}, set: set}
}

// Observe records one scored example.
func (p *Progress) Observe(task string, pred, label, weight float32) {
	p.mu.Lock()
	tp := p.tasks[task]
	if tp == nil {
		tp = &taskProgress{}
		p.tasks[task] = tp
		p.mu.Unlock()
		p.register(task)
		p.mu.Lock()
	}
	q := math.Min(math.Max(float64(pred), 1e-7), 1-1e-7)
	l := -math.Log(1 - q)
	if label > 0.5 {
		l = -math.Log(q)
	}
	tp.count++
	tp.weight += float64(weight)
	tp.logloss += float64(weight) * l
	if len(tp.pred) < progressWindow {
		tp.pred = append(tp.pred, pred)
		tp.label = append(tp.label, label)
	} else {
		tp.pred[tp.next], tp.label[tp.next] = pred, label
		tp.next = (tp.next + 1) % progressWindow
	}
	p.mu.Unlock()
}

func (p *Progress) register(task string) {
	if p.set == nil {
		return
	}
	gauge := func(name string, f func(model.TaskProgress) float64) {
		p.set.GetOrCreateGauge(fmt.Sprintf("%s{task=%q}", name, task), func() float64 { return f(p.Task(task)) })
	}
	gauge("unirec_trainer_examples_trained", func(s model.TaskProgress) float64 { return float64(s.Examples) })
	gauge("unirec_trainer_progressive_logloss", func(s model.TaskProgress) float64 { return s.LogLoss })
	gauge("unirec_trainer_progressive_auc", func(s model.TaskProgress) float64 { return s.AUC })
	gauge("unirec_trainer_progressive_calibration", func(s model.TaskProgress) float64 { return s.Calibration })
}

// Task returns the summary of one task.
func (p *Progress) Task(task string) model.TaskProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	tp := p.tasks[task]
	if tp == nil {
		return model.TaskProgress{}
	}
	return tp.summary()
}

// All returns the summary of every task.
func (p *Progress) All() map[string]model.TaskProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]model.TaskProgress, len(p.tasks))
	for name, tp := range p.tasks {
		out[name] = tp.summary()
	}
	return out
}

func (tp *taskProgress) summary() model.TaskProgress {
	s := model.TaskProgress{Examples: tp.count, Window: len(tp.pred)}
	if tp.weight > 0 {
		s.LogLoss = tp.logloss / tp.weight
	}
	for i := range tp.pred {
		s.MeanPred += float64(tp.pred[i])
		s.MeanLabel += float64(tp.label[i])
	}
	if n := float64(len(tp.pred)); n > 0 {
		s.MeanPred /= n
		s.MeanLabel /= n
	}
	if s.MeanLabel > 0 {
		s.Calibration = s.MeanPred / s.MeanLabel
	}
	s.AUC = AUC(tp.pred, tp.label)
	return s
}

// AUC is the area under the ROC curve of scores against 0/1 labels (ties
// count one half); 0.5 when a class is missing.
func AUC(score, label []float32) float64 {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return score[idx[a]] < score[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && score[idx[j]] == score[idx[i]] {
			j++
		}
		avgRank := float64(i+j+1) / 2
		for k := i; k < j; k++ {
			if label[idx[k]] > 0.5 {
				pos++
				rankSum += avgRank
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
