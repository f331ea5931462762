package online

import (
	"slices"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// memoryTerm reads the counts of ex's item in the lists of its context
// (before ex itself is counted, and without the latest engagements of ex's
// own user) into the scratch features and returns the memory term of the
// logit.
func (t *Trainer) memoryTerm(ex *stream.Example, ts *taskState) float32 {
	s := &t.scratch
	if ex.Task != s.memTask || !slices.Equal(ex.Context, s.memCtx) {
		// A positive and its sampled negatives share one context: their
		// keys are hashed once.
		s.memKeys = t.cfg.Memory.MemoryKeys(s.memKeys[:0], ex.Task, ex.Context)
		s.memUser = model.MemoryUser(ex.Context)
		s.memTask, s.memCtx = ex.Task, append(s.memCtx[:0], ex.Context...)
	}
	s.memX = s.memX[:0]
	var m float32
	for _, k := range s.memKeys {
		x := model.MemoryFeature(t.mem.count(k.ID, ex.ItemID, s.memUser, ex.EventTime, t.watermark))
		s.memX = append(s.memX, x)
		m += ts.p.Memory[k.Field] * x
	}
	return m
}

// updateMemory takes one AdaGrad step on the weights of the features the
// example read, then counts a positive in every list of its context.
func (t *Trainer) updateMemory(ex *stream.Example, ts *taskState, dz float32, learn bool) {
	s := &t.scratch
	if learn {
		lr := float32(t.cfg.Memory.LearningRate)
		for i, k := range s.memKeys {
			if x := s.memX[i]; x != 0 {
				w, acc := ts.p.Memory[k.Field], ts.accMemory[k.Field]
				adagrad(&w, &acc, dz*x, lr)
				ts.p.Memory[k.Field], ts.accMemory[k.Field] = w, acc
			}
		}
	}
	if ex.Label > 0 && ex.Weight > 0 {
		for _, k := range s.memKeys {
			t.mem.add(k.ID, ex.ItemID, s.memUser, float64(ex.Weight), ex.EventTime, t.watermark)
		}
	}
}
