package model

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The AVX kernels must give the Go loops' bits exactly: training is
// compared bit for bit across restarts, replicas and hot standbys, and a
// binary on a CPU without AVX must learn the same model.
func TestKernelsMatchGo(t *testing.T) {
	if avxPrefix(8) == 0 {
		t.Skip("no AVX kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(1, 2))
	value := func() float32 {
		switch r.IntN(8) {
		case 0:
			return 0
		case 1:
			return math.Float32frombits(r.Uint32() & 0x807fffff) // subnormal or zero
		case 2:
			return float32(r.NormFloat64() * 1e20)
		default:
			return float32(r.NormFloat64())
		}
	}
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = value()
		}
		return v
	}
	abs := func(v []float32) []float32 {
		for i := range v {
			v[i] = float32(math.Abs(float64(v[i])))
		}
		return v
	}
	same := func(what string, n int, got, want []float32) {
		t.Helper()
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s, len %d, element %d: %v (%#x), the Go loop gives %v (%#x)", what, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			}
		}
	}
	for _, n := range []int{1, 7, 8, 9, 16, 31, 32, 33, 64, 65, 200} {
		for range 50 {
			x, y := vec(n), vec(n)
			y2 := append([]float32(nil), y...)
			add(x, y)
			addGo(x, y2)
			same("add", n, y, y2)

			w, g, keep, step := vec(n), vec(n), value(), value()
			w2 := append([]float32(nil), w...)
			DecayStep(w, g, keep, step)
			decayStepGo(w2, g, keep, step)
			same("DecayStep", n, w, w2)

			w, g = vec(n), vec(n)
			acc := abs(vec(n))
			w2, acc2 := append([]float32(nil), w...), append([]float32(nil), acc...)
			lr := float32(r.Float64())
			AdaGradStep(w, acc, g, lr)
			adaGradGo(w2, acc2, g, lr)
			same("AdaGradStep accumulators", n, acc, acc2)
			same("AdaGradStep weights", n, w, w2)
		}
	}
}

// The AdaGrad kernel must be the trainer's scalar step, coordinate by
// coordinate, which serves as its specification.
func TestAdaGradStepIsTheScalarStep(t *testing.T) {
	w, acc, g := []float32{0.5, -1, 2}, []float32{0, 1, 4}, []float32{1, -2, 0}
	AdaGradStep(w, acc, g, 0.1)
	wantAcc := []float32{1, 5, 4}
	for i := range w {
		if acc[i] != wantAcc[i] {
			t.Errorf("acc[%d] = %v, want %v", i, acc[i], wantAcc[i])
		}
	}
	if want := float32(0.5) - 0.1*1/(1+1e-6); w[0] != want {
		t.Errorf("w[0] = %v, want %v", w[0], want)
	}
	if w[2] != 2 {
		t.Errorf("a zero gradient moved w[2] to %v", w[2])
	}
}
