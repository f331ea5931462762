package online

import "math"

// The learning step: logistic loss on one example with its weight, log-Q
// correction of sampled negatives, gradient clipping and a NaN/Inf guard,
// then sparse AdaGrad on the rows used (row-wise or per-coordinate) and
// per-coordinate AdaGrad on the dense task adapter.

// Optimizers of the embedding rows.
const (
	// OptimizerRowwise keeps one AdaGrad accumulator per row (the mean
	// squared gradient of its weights) and one for its bias: 2 floats.
	OptimizerRowwise = "rowwise"
	// OptimizerCoordinate keeps one accumulator per weight: Dim+1 floats.
	OptimizerCoordinate = "coordinate"
)

// accumulators is how many optimizer floats a row carries.
func (c ModelConfig) accumulators() int {
	if c.Optimizer == OptimizerCoordinate {
		return c.Dim + 1
	}
	return 2
}

// trainingLogit is the logit the loss sees: z - ln(q) for an example drawn
// with probability q (a sampled negative), z otherwise. See DESIGN.md.
func (c ModelConfig) trainingLogit(z, sampleProb float32) float32 {
	if c.LogQCorrection && sampleProb > 0 && sampleProb < 1 {
		return z - float32(math.Log(float64(sampleProb)))
	}
	return z
}

// gradient returns dLoss/dLogit of a weighted logistic loss, clipped, and
// false when it is not finite (the example is then not learned from).
func (c ModelConfig) gradient(p, label, weight float32) (float32, bool) {
	dz := weight * (p - label)
	if math.IsNaN(float64(dz)) || math.IsInf(float64(dz), 0) {
		return 0, false
	}
	clip := float32(c.GradientClip)
	return min(max(dz, -clip), clip), true
}

// update applies one step given dLoss/dLogit.
func (t *Trainer) update(ts *taskState, dz float32) {
	s := &t.scratch
	d := t.cfg.Dim
	dlr := float32(t.cfg.DenseLearningRate)
	for i := 0; i < d; i++ {
		gcp := dz * s.v[i]
		s.gv[i] = dz * s.cp[i]
		s.gc[i] = gcp * ts.p.Scale[i]
		adagrad(&ts.p.Scale[i], &ts.accScale[i], gcp*s.c[i], dlr)
		adagrad(&ts.p.Shift[i], &ts.accShift[i], gcp, dlr)
	}
	adagrad(&ts.p.Bias, &ts.accBias, dz, dlr)
	t.updateRows(s.ctxSlots, s.gc, dz)
	t.updateRows(s.itemSlots, s.gv, dz)
}

// updateRows applies AdaGrad to rows that were summed (and scaled by
// 1/sqrt(n)) into a vector whose gradient is g; dz is the bias gradient.
func (t *Trainer) updateRows(slots []int32, g []float32, dz float32) {
	n := 0
	for _, sl := range slots {
		if sl >= 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	s := &t.scratch
	d := t.cfg.Dim
	inv := float32(1 / math.Sqrt(float64(n)))
	for i := 0; i < d; i++ {
		s.grad[i] = g[i] * inv
	}
	l2, lr := float32(t.cfg.L2), float32(t.cfg.LearningRate)
	coord := t.cfg.Optimizer == OptimizerCoordinate
	for _, sl := range slots {
		if sl < 0 {
			continue
		}
		w, acc := t.tab.w(sl), t.tab.acc(sl)
		if coord {
			coordinateStep(w[:d], acc[:d], s.grad[:d], l2, lr)
			adagrad(&w[d], &acc[d], dz, lr)
		} else {
			rowwiseStep(w[:d], &acc[0], s.grad[:d], l2, lr)
			adagrad(&w[d], &acc[1], dz, lr)
		}
	}
}

// rowwiseStep: g' = g + l2*w; acc += mean(g'^2); w -= lr/sqrt(acc) * g'.
func rowwiseStep(w []float32, acc *float32, g []float32, l2, lr float32) {
	g = g[:len(w)]
	var sq float32
	for i, x := range w {
		gi := g[i] + l2*x
		sq += gi * gi
	}
	*acc += sq / float32(len(w))
	step := lr / (float32(math.Sqrt(float64(*acc))) + 1e-6)
	for i, x := range w {
		w[i] = x - step*(g[i]+l2*x)
	}
}

// coordinateStep: per weight, g' = g + l2*w; acc += g'^2; w -= lr*g'/sqrt(acc).
func coordinateStep(w, acc, g []float32, l2, lr float32) {
	g, acc = g[:len(w)], acc[:len(w)]
	for i, x := range w {
		gi := g[i] + l2*x
		acc[i] += gi * gi
		w[i] = x - lr*gi/(float32(math.Sqrt(float64(acc[i])))+1e-6)
	}
}

func adagrad(w, acc *float32, g, lr float32) {
	*acc += g * g
	*w -= lr * g / (float32(math.Sqrt(float64(*acc))) + 1e-6)
}
