package model

import "math"

// The hot vector kernels of training and scoring. Go does not vectorize, so
// the reductions (dot) are unrolled by four with independent accumulators,
// which breaks the add latency chains and lets the compiler drop bounds
// checks, and the elementwise ones run eight lanes at a time in AVX
// (kernels_amd64.s) where the CPU has it, the Go loop doing the rest: an
// elementwise kernel does each lane's operations in the Go loop's order,
// each rounded to float32, so both give the same bits (TestKernelsMatchGo).
// See BenchmarkApply and bench/ for their speed.

// dot returns the inner product of a and b[:len(a)].
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// axpy sets y += alpha*x.
func axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += alpha * x[i]
		y[i+1] += alpha * x[i+1]
		y[i+2] += alpha * x[i+2]
		y[i+3] += alpha * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += alpha * x[i]
	}
}

// addGo sets y += x.
func addGo(x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += x[i]
		y[i+1] += x[i+1]
		y[i+2] += x[i+2]
		y[i+3] += x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += x[i]
	}
}

// decayStepGo sets w = keep*w - step*g.
func decayStepGo(w, g []float32, keep, step float32) {
	g = g[:len(w)]
	i := 0
	for ; i+4 <= len(w); i += 4 {
		w[i] = keep*w[i] - step*g[i]
		w[i+1] = keep*w[i+1] - step*g[i+1]
		w[i+2] = keep*w[i+2] - step*g[i+2]
		w[i+3] = keep*w[i+3] - step*g[i+3]
	}
	for ; i < len(w); i++ {
		w[i] = keep*w[i] - step*g[i]
	}
}

// Dot is the exported inner product used by serving.
func Dot(a, b []float32) float32 { return dot(a, b) }

// adaGradGo is AdaGrad per coordinate: acc += g^2; w -= lr*g/(sqrt(acc)+1e-6).
func adaGradGo(w, acc, g []float32, lr float32) {
	acc, g = acc[:len(w)], g[:len(w)]
	for i := range w {
		acc[i] += g[i] * g[i]
		w[i] -= lr * g[i] / (float32(math.Sqrt(float64(acc[i]))) + 1e-6)
	}
}

// add sets y += x.
func add(x, y []float32) {
	y = y[:len(x)]
	n := avxPrefix(len(x))
	if n > 0 {
		addAVX(x[:n], y[:n])
	}
	addGo(x[n:], y[n:])
}

// Add sets y += x (eight lanes at a time in AVX where the CPU has it).
func Add(x, y []float32) { add(x, y) }

// DecayStep sets w = keep*w - step*g: a gradient step with decoupled
// weight decay (keep = 1 - lr*l2).
func DecayStep(w, g []float32, keep, step float32) {
	g = g[:len(w)]
	n := avxPrefix(len(w))
	if n > 0 {
		decayStepAVX(w[:n], g[:n], keep, step)
	}
	decayStepGo(w[n:], g[n:], keep, step)
}

// AdaGradStep is AdaGrad on every coordinate of w with its own
// accumulator: acc += g^2; w -= lr*g/(sqrt(acc)+1e-6).
func AdaGradStep(w, acc, g []float32, lr float32) {
	acc, g = acc[:len(w)], g[:len(w)]
	n := avxPrefix(len(w))
	if n > 0 {
		adaGradAVX(w[:n], acc[:n], g[:n], lr)
	}
	adaGradGo(w[n:], acc[n:], g[n:], lr)
}
