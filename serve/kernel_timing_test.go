package serve

import (
	"math/rand/v2"
	"testing"

	"github.com/unirec/unirec/online"
)

// The scoring kernel against the scalar Go loop it replaced, on a
// 100,000 x 64 matrix; SetBytes makes -bench report the matrix bytes
// scored per second, to compare with the machine's memory bandwidth
// (`unirec bench latency` measures both in one run).

func benchMatrix(n, dim int) ([]float32, []float32) {
	rng := rand.New(rand.NewPCG(1, 2))
	mat := make([]float32, n*(dim+1))
	for i := range mat {
		mat[i] = rng.Float32()
	}
	cv := make([]float32, dim)
	for i := range cv {
		cv[i] = rng.Float32()
	}
	return mat, cv
}

func BenchmarkScoresScalarBaseline(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	out := make([]float32, 100000)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		for i := range out {
			out[i] = online.Logit(cv, 0, mat[i*65:(i+1)*65])
		}
	}
}

func BenchmarkScores(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	out := make([]float32, 100000)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		Scores(out, mat, cv)
	}
}

func BenchmarkRankTop100(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		rankTop(&scoreSpec{mat: mat, cv: cv, k: 100, shards: 1, allow: func(int) bool { return true }})
	}
}
