package online

import (
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Memory reading and counting depend only on the examples in log order
// (and the watermark they raise), never on what the learner learned: an
// example's counts are read before its own positive is counted, with the
// watermark of the examples before it. So a batch's memory work runs in
// the log stage, ahead of the learner (logstage.go), and the model stays a
// pure function of the log.

// readLane reads the memory features of ex's keys in lane l (m) into
// f.memX (their counts before ex itself is counted, without the latest
// engagements of ex's own user), then counts a positive in each of their
// lists, at watermark wm (the examples' before ex).
func (m *memory) readLane(l int, ex *stream.Example, f *features, wm int64) {
	h, mine := f.itemH, false
	for i, k := range f.mem {
		if memLaneOf(k.ID) == l {
			mine = true
			f.memX[i] = model.MemoryFeature(m.count(k.ID, ex.ItemID, h, f.user, ex.EventTime, wm))
		}
	}
	if !mine || ex.Label <= 0 || ex.Weight <= 0 {
		return
	}
	for _, k := range f.mem {
		if memLaneOf(k.ID) == l {
			m.add(k.ID, ex.ItemID, h, f.user, float64(ex.Weight), ex.EventTime, wm)
		}
	}
}

// memoryTerm is the memory term of the logit: the weights of the example's
// fields times the features readMemory read.
func memoryTerm(f *features, ts *taskState) float32 {
	var m float32
	for i, k := range f.mem {
		m += ts.p.Memory[k.Field] * f.memX[i]
	}
	return m
}

// learnMemory takes one AdaGrad step on the weights of the features the
// example read.
func (t *Trainer) learnMemory(f *features, ts *taskState, dz float32) {
	lr := float32(t.cfg.Memory.LearningRate)
	for i, k := range f.mem {
		if x := f.memX[i]; x != 0 {
			w, acc := ts.p.Memory[k.Field], ts.accMemory[k.Field]
			adagrad(&w, &acc, dz*x, lr)
			ts.p.Memory[k.Field], ts.accMemory[k.Field] = w, acc
		}
	}
}
