package serve

import (
	"fmt"
	"math"
)

// Quantized scoring (serve.scoring: int8). The item matrix is also kept
// as int8 weights with one float32 scale per row (max |w| / 127, as the
// int8 snapshot encoding) and the float32 bias: a quarter of the bytes a
// pass reads. A pass ranks by the approximate logits (the query quantized
// to int8 too, products summed exactly in int32; the rows never hold -128,
// which the AVX2 kernel's sign trick needs) and keeps the best rerankDepth(k)
// allowed items; those are re-ranked by their exact float32 logits, with
// the kernel and the order of additions of the exact path, so every
// answered item carries its exact score and the answer is the exact
// order of the candidates. What it can miss is an item of the exact top
// k that the approximate pass ranked below the depth: bench/README.md
// gives the measured overlap with the exact top k: 1.0000 on the serving
// benchmark's model and on the unified model trained on MovieLens, memory
// boosts included, every canvas, top 10 and top 100. That is why int8 is
// the default: the same answers for a quarter to a fifth of the CPU. It
// costs (dim + 8) bytes per item of memory beside the float32 matrix.

// Scoring modes (ReplicaOptions.Scoring, serve.scoring).
const (
	ScoringExact = "exact"
	ScoringInt8  = "int8"
	// DefaultScoring is serve.scoring when unset.
	DefaultScoring = ScoringInt8
)

// checkScoring checks a scoring mode ("" is the default).
func checkScoring(mode string) error {
	switch mode {
	case "", ScoringExact, ScoringInt8:
		return nil
	}
	return fmt.Errorf("serve.scoring must be exact or int8, got %q", mode)
}

// rerankDepth is how many candidates of a quantized pass are re-ranked
// exactly for a request of k.
func rerankDepth(k int) int { return max(4*k, k+64) }

// quantizeMatrices fills m.quant with the int8 form of each of its
// matrices: prev's where the matrix is the same, prev's with the rows of
// the items m recomputed quantized again after a delta, else in full;
// none where the int8 pass would be slower than the exact one (no AVX2,
// or a dim that is not a multiple of 16): that version scores exactly.
func (m *Model) quantizeMatrices(prev *Model) {
	if !int8Fast(m.Config.Dim) {
		return
	}
	m.quant = make(map[string]*quantMatrix, len(m.matrices))
	for task, mat := range m.matrices {
		var old *quantMatrix
		if prev != nil {
			old = prev.quant[task]
		}
		switch {
		case old != nil && sameSlice(prev.matrices[task], mat):
			m.quant[task] = old
		case old != nil && task == "" && m.dirty != nil && len(old.scale) <= len(mat)/(m.Config.Dim+1) && old.dim == m.Config.Dim:
			m.quant[task] = old.update(mat, m.dirty)
		default:
			m.quant[task] = quantize(mat, m.Config.Dim)
		}
	}
}

// quantized returns the int8 form of the matrix scoring for task, nil
// when the version has none.
func (m *Model) quantized(task string) *quantMatrix {
	if m.Config.Isolated {
		return m.quant[task]
	}
	return m.quant[""]
}

func sameSlice(a, b []float32) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// quantMatrix is an item matrix (rows of dim weights and a bias) in int8.
type quantMatrix struct {
	dim   int
	w     []int8    // n x dim
	scale []float32 // per row
	bias  []float32 // per row, exact
}

// quantize returns the int8 form of mat (rows of dim weights and a bias).
func quantize(mat []float32, dim int) *quantMatrix {
	n := len(mat) / (dim + 1)
	qm := &quantMatrix{dim: dim, w: make([]int8, n*dim), scale: make([]float32, n), bias: make([]float32, n)}
	for i := range n {
		qm.quantizeRow(mat, i)
	}
	return qm
}

// update returns a copy of qm for mat, a later version of its matrix in
// which only the rows of dirty changed or were added.
func (qm *quantMatrix) update(mat []float32, dirty map[int]bool) *quantMatrix {
	n := len(mat) / (qm.dim + 1)
	out := &quantMatrix{dim: qm.dim, w: make([]int8, n*qm.dim), scale: make([]float32, n), bias: make([]float32, n)}
	copy(out.w, qm.w)
	copy(out.scale, qm.scale)
	copy(out.bias, qm.bias)
	for i := range dirty {
		out.quantizeRow(mat, i)
	}
	for i := len(qm.scale); i < n; i++ {
		out.quantizeRow(mat, i)
	}
	return out
}

// quantizeRow sets row i of qm from row i of mat.
func (qm *quantMatrix) quantizeRow(mat []float32, i int) {
	dim, d := qm.dim, qm.dim+1
	row := mat[i*d : i*d+dim]
	m := float32(0)
	for _, v := range row {
		m = max(m, abs32(v))
	}
	qm.bias[i] = mat[i*d+dim]
	out := qm.w[i*dim : (i+1)*dim]
	if m == 0 {
		qm.scale[i] = 0
		clear(out)
		return
	}
	qm.scale[i] = m / 127
	inv := 127 / m
	for j, v := range row {
		out[j] = int8(math.Round(float64(v * inv)))
	}
}

// quantizeQuery returns cv as int8 (its largest magnitude at 127, as the
// rows are quantized) and its scale.
func quantizeQuery(cv []float32) ([]int8, float32) {
	m := float32(0)
	for _, v := range cv {
		m = max(m, abs32(v))
	}
	q := make([]int8, len(cv))
	if m == 0 {
		return q, 0
	}
	inv := 127 / m
	for i, v := range cv {
		q[i] = int8(math.Round(float64(v * inv)))
	}
	return q, m / 127
}

// scores writes the approximate logits (bias included) of the items
// [lo, lo+len(dst)) into dst: eight rows at a time in AVX2, the rest (or
// all, without AVX2) in Go, with the same bits.
func (qm *quantMatrix) scores(dst []float32, lo int, q []int8, qscale float32) {
	dim := qm.dim
	w, scale, bias := qm.w[lo*dim:(lo+len(dst))*dim], qm.scale[lo:lo+len(dst)], qm.bias[lo:lo+len(dst)]
	m := scoreRows8(dst, w, q, scale, bias, qscale)
	for j := m; j < len(dst); j++ {
		dst[j] = dequantize(dot8(w[j*dim:(j+1)*dim:(j+1)*dim], q), scale[j]*qscale, bias[j])
	}
}

// dequantize is the approximate logit of an int32 dot product: rounded
// after the product (the conversion keeps the compiler from fusing it
// with the addition), as scoreRowsAVX2 computes it.
func dequantize(dot int32, scale, bias float32) float32 {
	return float32(float32(dot)*scale) + bias
}

// dot8 is the dot product of an int8 row and an int8 query of its length,
// eight products per step into four independent sums (no bounds checks in
// the loop).
func dot8(a, b []int8) int32 {
	var s0, s1, s2, s3 int32
	for len(a) >= 8 && len(b) >= 8 {
		x, y := a[:8:8], b[:8:8]
		s0 += int32(x[0])*int32(y[0]) + int32(x[4])*int32(y[4])
		s1 += int32(x[1])*int32(y[1]) + int32(x[5])*int32(y[5])
		s2 += int32(x[2])*int32(y[2]) + int32(x[6])*int32(y[6])
		s3 += int32(x[3])*int32(y[3]) + int32(x[7])*int32(y[7])
		a, b = a[8:], b[8:]
	}
	for i := range min(len(a), len(b)) {
		s0 += int32(a[i]) * int32(b[i])
	}
	return s0 + s1 + s2 + s3
}

// rerank returns the k best of the candidates top kept, by their exact
// logits computed as the exact pass computes them (the same kernel on each
// row, then the boost, then the bias), best first (ties by index), in
// top's scratch. Each row is scored where it lies: gathering them first
// cost a 100 KB copy per request.
func (s *scoreSpec) rerank(top *topK) []scored {
	d := len(s.cv) + 1
	cv1 := append(s.cv[:len(s.cv):len(s.cv)], 1)
	cands := top.kept()
	var z [1]float32
	touchRows(z[:], s.mat, cands, d)
	for j, c := range cands {
		scoreRows(z[:], s.mat[c.idx*d:(c.idx+1)*d], cv1)
		addBoosts(z[:], c.idx, s.boosts)
		cands[j].logit = z[0] + s.bias
	}
	return bestSorted(cands, s.k, top.keys)
}

// touchRows reads one float32 of every cache line of the candidates'
// rows, all of them before any is scored: the rows lie anywhere in a
// matrix larger than the caches, and these loads do not depend on one
// another, so the core overlaps their misses instead of waiting for each
// row in turn. The sum lands in dst[0], which the caller overwrites.
func touchRows(dst, mat []float32, cands []scored, d int) {
	var sum float32
	for _, c := range cands {
		row := mat[c.idx*d : (c.idx+1)*d]
		for i := 0; i < len(row); i += 16 {
			sum += row[i]
		}
	}
	if len(dst) > 0 {
		dst[0] = sum
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
