package bench

import (
	"math"
	"math/rand/v2"

	"github.com/unirec/unirec/ingest"
)

// ALSOptions configures the batch implicit ALS baseline.
type ALSOptions struct {
	Factors        int     // latent dimension (default 32)
	Iterations     int     // alternating sweeps (default 10)
	Regularization float64 // L2 on every factor (default 0.1)
	// Alpha scales engagement counts into confidences: c = 1 + Alpha*r
	// (default 10).
	Alpha float64
	// CGSteps is the conjugate-gradient steps per user or item and sweep
	// (default 3).
	CGSteps int
	Seed    uint64
}

// EnsureDefaults fills the zero fields with the defaults.
func (o *ALSOptions) EnsureDefaults() {
	if o.Factors <= 0 {
		o.Factors = 32
	}
	if o.Iterations <= 0 {
		o.Iterations = 10
	}
	if o.Regularization <= 0 {
		o.Regularization = 0.1
	}
	if o.Alpha <= 0 {
		o.Alpha = 10
	}
	if o.CGSteps <= 0 {
		o.CGSteps = 3
	}
}

// alsModel is a factorization of the user x item matrix of positive
// engagement counts (every canvas) by implicit ALS (Hu, Koren, Volinsky
// 2008), each least-squares step solved approximately by conjugate
// gradient warm-started from the previous factors (Takacs et al. 2011).
type alsModel struct {
	d     int
	users map[string]int32
	U, V  [][]float64 // user and item factors
}

// alsRow is one row of the sparse matrix: column indexes and confidences.
type alsRow struct {
	cols []int32
	conf []float64
}

func trainALS(t *trainIndex, train []ingest.Event, o ALSOptions) *alsModel {
	o.EnsureDefaults()
	m := &alsModel{d: o.Factors, users: map[string]int32{}}
	counts := map[[2]int32]float64{}
	for _, e := range train {
		u := e.Context["user_id"]
		if !Positive(e.Action) || u == "" {
			continue
		}
		ui, ok := m.users[u]
		if !ok {
			ui = int32(len(m.users))
			m.users[u] = ui
		}
		counts[[2]int32{ui, t.idx[e.ItemID]}]++
	}
	byUser := make([]alsRow, len(m.users))
	byItem := make([]alsRow, len(t.ids))
	for k, r := range counts {
		c := 1 + o.Alpha*r
		byUser[k[0]].cols = append(byUser[k[0]].cols, k[1])
		byUser[k[0]].conf = append(byUser[k[0]].conf, c)
		byItem[k[1]].cols = append(byItem[k[1]].cols, k[0])
		byItem[k[1]].conf = append(byItem[k[1]].conf, c)
	}
	r := rand.New(rand.NewPCG(o.Seed, 11))
	m.U, m.V = randomFactors(r, len(m.users), o.Factors), randomFactors(r, len(t.ids), o.Factors)
	for range o.Iterations {
		alsSweep(m.U, m.V, byUser, o)
		alsSweep(m.V, m.U, byItem, o)
	}
	return m
}

func randomFactors(r *rand.Rand, n, d int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = make([]float64, d)
		for j := range out[i] {
			out[i][j] = r.NormFloat64() * 0.01
		}
	}
	return out
}

// alsSweep solves every row x of X for fixed Y:
// (YtY + Yt(C-I)Y + lambda I) x = Yt C p, p = 1 on the row's columns.
func alsSweep(X, Y [][]float64, rows []alsRow, o ALSOptions) {
	d := o.Factors
	A := gram(Y, d)
	for i := range A {
		A[i][i] += o.Regularization
	}
	r, p, ap := make([]float64, d), make([]float64, d), make([]float64, d)
	for u, row := range rows {
		x := X[u]
		// r = b - A x
		matVec(A, x, r)
		for j := range r {
			r[j] = -r[j]
		}
		for k, c := range row.cols {
			y := Y[c]
			axpy(r, y, row.conf[k]-(row.conf[k]-1)*dot(y, x))
		}
		copy(p, r)
		rs := dot(r, r)
		for range o.CGSteps {
			if rs < 1e-20 {
				break
			}
			matVec(A, p, ap)
			for k, c := range row.cols {
				y := Y[c]
				axpy(ap, y, (row.conf[k]-1)*dot(y, p))
			}
			a := rs / dot(p, ap)
			axpy(x, p, a)
			axpy(r, ap, -a)
			next := dot(r, r)
			for j := range p {
				p[j] = r[j] + next/rs*p[j]
			}
			rs = next
		}
	}
}

// gram is YtY.
func gram(Y [][]float64, d int) [][]float64 {
	A := make([][]float64, d)
	for i := range A {
		A[i] = make([]float64, d)
	}
	for _, y := range Y {
		for i, yi := range y {
			if yi != 0 {
				axpy(A[i], y, yi)
			}
		}
	}
	return A
}

func matVec(A [][]float64, x, out []float64) {
	for i, row := range A {
		out[i] = dot(row, x)
	}
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}

// axpy is y += a x.
func axpy(y, x []float64, a float64) {
	for i, v := range x {
		y[i] += a * v
	}
}

// alsBaseline answers with the factorization: a query with a source item
// (related_items) by the cosine of item factors to it; any other query with
// a known user by the dot product of the user's and the items' factors;
// global popularity fills the answer up to K (and answers the rest).
type alsBaseline struct {
	t     *trainIndex
	m     *alsModel
	norms []float64
}

func newALSBaseline(t *trainIndex, train []ingest.Event, o ALSOptions) *alsBaseline {
	b := &alsBaseline{t: t, m: trainALS(t, train, o)}
	b.norms = make([]float64, len(b.m.V))
	for i, v := range b.m.V {
		b.norms[i] = math.Sqrt(dot(v, v))
	}
	return b
}

func (b *alsBaseline) Name() string { return "als" }

func (b *alsBaseline) Answer(q BaselineQuery) ([]string, []float64) {
	primary := b.t.noScores()
	src, hasSrc := b.t.idx[q.Event.Context["source_item_id"]]
	u, hasUser := b.m.users[q.Event.Context["user_id"]]
	switch {
	case hasSrc && q.Event.Context["source_item_id"] != "" && b.norms[src] > 0:
		s := b.m.V[src]
		for i, v := range b.m.V {
			if b.norms[i] > 0 {
				primary[i] = dot(s, v) / (b.norms[src] * b.norms[i])
			}
		}
	case hasUser:
		x := b.m.U[u]
		for i, v := range b.m.V {
			primary[i] = dot(x, v)
		}
	}
	return b.t.answer(q, primary, true)
}
