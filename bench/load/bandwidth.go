package load

import (
	"math/rand/v2"
	"time"

	"github.com/viterin/vek/vek32"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/serve"
)

// KernelFigures compare the scoring kernel with the machine's memory
// bandwidth, measured in the same run on one core. A catalog matrix of a
// few tens of MB partly stays in the last-level cache between queries, so
// the kernel is also timed on a 256 MiB matrix that cannot: that figure is
// the one to hold against DRAM bandwidth.
type KernelFigures struct {
	Items, Dim    int
	MatrixBytes   int64
	KernelTime    time.Duration // serve.Scores over the whole matrix, best of the runs
	ScalarTime    time.Duration // the same with a scalar Go loop (model.Logit): the baseline
	KernelGBs     float64       // matrix bytes / KernelTime
	KernelBigGBs  float64       // serve.Scores over a 256 MiB matrix, bytes per second
	ReadGBs       float64       // DRAM read bandwidth (AVX2 dot product of two 128 MiB halves)
	CopyGBs       float64       // memory copy bandwidth (bytes copied per second, 256 MiB)
	OfBandwidth   float64       // KernelBigGBs / ReadGBs
	SpeedupScalar float64       // ScalarTime / KernelTime
}

// MeasureKernel times the scoring kernel on an items x dim matrix against
// a scalar loop and the memory bandwidth (best of runs each).
func MeasureKernel(items, dim, runs int) KernelFigures {
	rng := rand.New(rand.NewPCG(1, 2))
	mat := make([]float32, items*(dim+1))
	for i := range mat {
		mat[i] = rng.Float32()
	}
	cv := make([]float32, dim)
	for i := range cv {
		cv[i] = rng.Float32()
	}
	out := make([]float32, items)
	f := KernelFigures{Items: items, Dim: dim, MatrixBytes: int64(len(mat)) * 4}
	f.KernelTime = best(runs, func() { serve.Scores(out, mat, cv) })
	f.ScalarTime = best(runs, func() {
		d := dim + 1
		for i := range out {
			out[i] = model.Logit(cv, 0, mat[i*d:(i+1)*d])
		}
	})
	big := make([]float32, 64<<20)
	for i := range big {
		big[i] = 1
	}
	half := len(big) / 2
	read := best(runs, func() { vek32.Dot(big[:half], big[half:2*half]) })
	rows := len(big) / (dim + 1)
	bigOut := make([]float32, rows)
	bigKernel := best(runs, func() { serve.Scores(bigOut, big[:rows*(dim+1)], cv) })
	dst := make([]float32, len(big))
	cp := best(runs, func() { copy(dst, big) })
	gb := func(bytes int64, d time.Duration) float64 { return float64(bytes) / d.Seconds() / 1e9 }
	f.KernelGBs = gb(f.MatrixBytes, f.KernelTime)
	f.KernelBigGBs = gb(int64(rows*(dim+1))*4, bigKernel)
	f.ReadGBs = gb(int64(2*half)*4, read)
	f.CopyGBs = gb(int64(len(big))*4, cp)
	f.OfBandwidth = f.KernelBigGBs / f.ReadGBs
	f.SpeedupScalar = float64(f.ScalarTime) / float64(f.KernelTime)
	return f
}

func best(runs int, f func()) time.Duration {
	b := time.Duration(1 << 62)
	for range max(runs, 1) {
		s := time.Now()
		f()
		b = min(b, time.Since(s))
	}
	return b
}
