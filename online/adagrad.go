package online

import (
	"math"

	"github.com/unirec/unirec/online/model"
)

// The learning step: logistic loss on one example with its weight, log-Q
// correction of sampled negatives, gradient clipping and a NaN/Inf guard,
// then sparse AdaGrad on the rows used (row-wise or per-coordinate) and
// per-coordinate AdaGrad on the dense task adapter.

// update applies one step given dLoss/dLogit.
func (t *Trainer) update(ts *taskState, dz float32) {
	s := &t.scratch
	d := t.cfg.Dim
	gScale, gShift := s.gScale[:d], s.gShift[:d]
	s.gradients(dz, ts, s.gv[:d], s.gc[:d], gScale, gShift)
	t.stepAdapter(ts, gScale, gShift, dz)
	t.updateContextRows(s.ctxSlots, s.gc, dz)
	t.updateItemRows(s.itemSlots, s.itemRows, s.gv, dz)
}

// stepAdapter takes the AdaGrad step of the task adapter: scale, shift
// and bias gradients.
func (t *Trainer) stepAdapter(ts *taskState, gScale, gShift []float32, dz float32) {
	dlr := float32(t.cfg.DenseLearningRate)
	model.AdaGradStep(ts.p.Scale, ts.accScale, gScale, dlr)
	model.AdaGradStep(ts.p.Shift, ts.accShift, gShift, dlr)
	adagrad(&ts.p.Bias, &ts.accBias, dz, dlr)
}

// updateContextRows: the context vector is the sum of its rows scaled by
// 1/sqrt(n), its bias the plain sum of their biases.
func (t *Trainer) updateContextRows(slots []int32, g []float32, dz float32) {
	if scale := contextScale(slots); scale > 0 {
		t.updateRows(slots, g, scale, dz)
	}
}

// contextScale is the scale of each of the context's rows in its vector:
// 1/sqrt(n) for the n slots that hold a row, 0 when none does.
func contextScale(slots []int32) float32 {
	n := 0
	for _, sl := range slots {
		if sl >= 0 {
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return float32(1 / math.Sqrt(float64(n)))
}

// updateItemRows: the item id's row counts fully, the metadata rows are
// scaled by 1/sqrt(m) and their biases are not used (see ItemVector).
func (t *Trainer) updateItemRows(slots []int32, rows [][]float32, g []float32, dz float32) {
	if len(slots) == 0 {
		return
	}
	n := min(model.ItemIDRows, len(slots))
	t.updateRows(slots[:n], g, 1, dz)
	if inv := model.MetaScale(rows); inv > 0 {
		t.updateRows(slots[n:], g, inv, 0)
	}
}

// updateRows applies AdaGrad to rows that all received the gradient
// g*scale (bias gradient dz). Since the rows share it, row-wise AdaGrad
// computes its squared norm once; L2 is decoupled weight decay (w *= 1 -
// lr*l2 on every update of the row), which the accumulators do not see.
func (t *Trainer) updateRows(slots []int32, g []float32, scale, dz float32) {
	s := &t.scratch
	d := t.cfg.Dim
	grad := s.grad[:d]
	for i := range grad {
		grad[i] = g[i] * scale
	}
	meanSq := model.Dot(grad, grad) / float32(d)
	for _, sl := range slots {
		if sl >= 0 {
			t.rowStep(sl, grad, meanSq, dz)
		}
	}
}

// rowStep applies AdaGrad to the row of slot: grad is its gradient,
// meanSq the mean of grad's squares, dz the gradient of its bias.
func (t *Trainer) rowStep(sl int32, grad []float32, meanSq, dz float32) {
	d := t.cfg.Dim
	l2, lr := float32(t.cfg.L2), float32(t.cfg.LearningRate)
	w, acc := t.rows.w(sl), t.rows.acc(sl)
	if forget := float32(t.cfg.Forget); forget != 1 && forget != 0 {
		for i := range acc {
			acc[i] *= forget
		}
	}
	if t.cfg.Optimizer == model.OptimizerCoordinate {
		coordinateStep(w[:d], acc[:d], grad, l2, lr)
		adagrad(&w[d], &acc[d], dz, lr)
	} else {
		acc[0] += meanSq
		model.DecayStep(w[:d], grad, 1-lr*l2, lr/(float32(math.Sqrt(float64(acc[0])))+1e-6))
		adagrad(&w[d], &acc[1], dz, lr)
	}
}

// coordinateStep: per weight, acc += g^2; w = w*(1 - lr*l2) - lr*g/sqrt(acc).
func coordinateStep(w, acc, g []float32, l2, lr float32) {
	g, acc = g[:len(w)], acc[:len(w)]
	keep := 1 - lr*l2
	for i, x := range w {
		acc[i] += g[i] * g[i]
		w[i] = keep*x - lr*g[i]/(float32(math.Sqrt(float64(acc[i])))+1e-6)
	}
}

func adagrad(w, acc *float32, g, lr float32) {
	*acc += g * g
	*w -= lr * g / (float32(math.Sqrt(float64(*acc))) + 1e-6)
}
