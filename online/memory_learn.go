package online

import (
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// memoryTerm reads the counts of ex's item in the lists of its context
// (f.mem: before ex itself is counted, and without the latest engagements
// of ex's own user) into the scratch features and returns the memory term
// of the logit.
func (t *Trainer) memoryTerm(ex *stream.Example, f *features, ts *taskState) float32 {
	s := &t.scratch
	s.memX = s.memX[:0]
	var m float32
	for _, k := range f.mem {
		x := model.MemoryFeature(t.mem.count(k.ID, ex.ItemID, f.user, ex.EventTime, t.watermark))
		s.memX = append(s.memX, x)
		m += ts.p.Memory[k.Field] * x
	}
	return m
}

// updateMemory takes one AdaGrad step on the weights of the features the
// example read, then counts a positive in every list of its context.
func (t *Trainer) updateMemory(ex *stream.Example, f *features, ts *taskState, dz float32, learn bool) {
	s := &t.scratch
	if learn {
		lr := float32(t.cfg.Memory.LearningRate)
		for i, k := range f.mem {
			if x := s.memX[i]; x != 0 {
				w, acc := ts.p.Memory[k.Field], ts.accMemory[k.Field]
				adagrad(&w, &acc, dz*x, lr)
				ts.p.Memory[k.Field], ts.accMemory[k.Field] = w, acc
			}
		}
	}
	if ex.Label > 0 && ex.Weight > 0 {
		for _, k := range f.mem {
			t.mem.add(k.ID, ex.ItemID, f.user, float64(ex.Weight), ex.EventTime, t.watermark)
		}
	}
}
