package serve

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// TestInt8KernelsAgree: the AVX2 int8 pass (eight rows at a time) and
// the Go one give the same logits, bit for bit, at every dim (the AVX2
// one takes dims that are multiples of 16) and row count, extreme
// weights included.
func TestInt8KernelsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, dim := range []int{2, 7, 16, 32, 48, 64, 80, 1024} {
		const rows = 37
		qm := &quantMatrix{dim: dim, w: make([]int8, rows*dim), scale: make([]float32, rows), bias: make([]float32, rows)}
		for i := range qm.w {
			qm.w[i] = int8(rng.IntN(255) - 127) // quantizeRow never writes -128
		}
		qm.w[0], qm.w[1] = -127, 127
		for j := range rows {
			qm.scale[j], qm.bias[j] = rng.Float32()/100, float32(rng.NormFloat64())
		}
		cv := make([]float32, dim)
		for i := range cv {
			cv[i] = float32(rng.NormFloat64())
		}
		q, qscale := quantizeQuery(cv)
		for _, n := range []int{rows - 1, 8, 3} {
			got := make([]float32, n)
			qm.scores(got, 1, q, qscale)
			for j := range got {
				row := qm.w[(1+j)*dim : (2+j)*dim]
				want := dequantize(dot8(row, q), qm.scale[1+j]*qscale, qm.bias[1+j])
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("dim %d, %d rows: row %d: %v, want %v", dim, n, j, got[j], want)
				}
			}
		}
	}
}

// TestInt8PassKeepsBoostedItems: items whose memory boost lifts them to
// the top are answered by an int8 pass, though their int8 logits alone
// are below the worst of a full top-k (the filter must see the boosts).
func TestInt8PassKeepsBoostedItems(t *testing.T) {
	const n, dim = 20000, 64
	rng := rand.New(rand.NewPCG(4, 4))
	mat := make([]float32, n*(dim+1))
	for i := range mat {
		mat[i] = float32(rng.NormFloat64())
	}
	cv := make([]float32, dim)
	for i := range cv {
		cv[i] = float32(rng.NormFloat64())
	}
	boosts := []boost{{idx: 5000, z: 1000}, {idx: 12345, z: 900}, {idx: 19999, z: 800}}
	got, err := rankTop(&scoreSpec{mat: mat, cv: cv, k: 10, shards: 1, boosts: boosts, quant: quantize(mat, dim)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 3 || got[0].idx != 5000 || got[1].idx != 12345 || got[2].idx != 19999 {
		t.Fatalf("answered %v, want the three boosted items first", got)
	}
}

// TestInt8RerankOverlap: on a random matrix and on one with planted
// clusters, the int8 pass re-ranked exactly finds at least 99% of the
// exact top k, and every item it answers carries its exact logit, bit for
// bit.
func TestInt8RerankOverlap(t *testing.T) {
	const n, dim, queries = 20000, 64, 60
	for _, planted := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(9, 9))
		mat := make([]float32, n*(dim+1))
		centers := make([][]float32, 50)
		for c := range centers {
			centers[c] = make([]float32, dim)
			for j := range centers[c] {
				centers[c][j] = float32(rng.NormFloat64())
			}
		}
		for i := range n {
			for j := range dim + 1 {
				v := float32(rng.NormFloat64()) * 0.3
				if planted && j < dim {
					v += centers[i%len(centers)][j]
				}
				mat[i*(dim+1)+j] = v
			}
		}
		qm := quantize(mat, dim)
		for _, k := range []int{10, 100} {
			hits, total := 0, 0
			for range queries {
				cv := make([]float32, dim)
				for j := range cv {
					cv[j] = float32(rng.NormFloat64())
				}
				exact, _ := rankTop(&scoreSpec{mat: mat, cv: cv, bias: 0.25, k: n, shards: 1})
				logit := map[int]float32{}
				inTop := map[int]bool{}
				for r, s := range exact {
					logit[s.idx] = s.logit
					inTop[s.idx] = r < k
				}
				got, err := rankTop(&scoreSpec{mat: mat, cv: cv, bias: 0.25, k: k, shards: 2, quant: qm})
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range got {
					if math.Float32bits(s.logit) != math.Float32bits(logit[s.idx]) {
						t.Fatalf("item %d answered with logit %v, exact %v", s.idx, s.logit, logit[s.idx])
					}
					if inTop[s.idx] {
						hits++
					}
				}
				total += k
			}
			overlap := float64(hits) / float64(total)
			t.Logf("planted=%v k=%d: top-k overlap %.4f (re-rank depth %d)", planted, k, overlap, rerankDepth(k))
			if overlap < 0.99 {
				t.Errorf("planted=%v k=%d: overlap %.4f, want >= 0.99", planted, k, overlap)
			}
		}
	}
}

// TestScoringModeIsChecked: an unknown serve.scoring fails at start-up
// with a message naming the field.
func TestScoringModeIsChecked(t *testing.T) {
	for _, mode := range []string{"", ScoringExact, ScoringInt8} {
		if err := checkScoring(mode); err != nil {
			t.Errorf("%q: %v", mode, err)
		}
	}
	if err := checkScoring("fp8"); err == nil || fmt.Sprint(err) != `serve.scoring must be exact or int8, got "fp8"` {
		t.Errorf("fp8: %v", err)
	}
}

// TestInt8MatrixFollowsDeltas: after a delta that changes some items and
// adds one, the int8 matrix a replica updated in place of the changed
// rows equals the one quantized afresh, and it answers as an exact
// replica does.
func TestInt8MatrixFollowsDeltas(t *testing.T) {
	const dim = 16
	prev, next := randomCapture(3000, dim), randomCapture(3001, dim) // the first 3000 items alike
	next.Version = 2
	tp := model.TaskParams{Scale: make([]float32, dim), Shift: make([]float32, dim)}
	for j := range dim {
		tp.Scale[j], tp.Shift[j] = 1, float32(j%5)-2 // a context vector that is not zero
	}
	prev.Tasks["notifications"], next.Tasks["notifications"] = tp, tp
	for _, r := range []int{7, 2500} {
		next.Weights[r*(dim+1)] += 3
	}
	replica := func(scoring string) *Replica {
		r, _ := newTestReplica(t, ReplicaOptions{Scoring: scoring}, nil)
		for _, u := range []*snapshot.Update{snapshot.UpdateOf(nil, prev), snapshot.UpdateOf(prev, next)} {
			if err := r.Apply(u); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}
	r, exact := replica(ScoringInt8), replica(ScoringExact)
	m := r.head.Load()
	if !int8Fast(dim) {
		t.Skip("no AVX2: int8 scoring scores exactly here")
	}
	if m.Kind != snapshot.KindDelta || len(m.dirty) != 3 {
		t.Fatalf("version kind %s recomputing %d items, want a delta recomputing 3", m.Kind, len(m.dirty))
	}
	got, want := m.quant[""], quantize(m.matrices[""], m.Config.Dim)
	if fmt.Sprint(got.w) != fmt.Sprint(want.w) || fmt.Sprint(got.scale) != fmt.Sprint(want.scale) || fmt.Sprint(got.bias) != fmt.Sprint(want.bias) {
		t.Errorf("the int8 matrix updated by the delta differs from a fresh quantization")
	}
	for i := range 20 {
		req := &Request{UseCase: "notifications", K: 10, Context: user("u-" + fmt.Sprint(i))}
		a, aerr := r.Recommend(context.Background(), req)
		b, berr := exact.Recommend(context.Background(), req)
		if aerr != nil || berr != nil {
			t.Fatal(aerr, berr)
		}
		if fmt.Sprint(a.Items) != fmt.Sprint(b.Items) {
			t.Fatalf("int8 replica answers %v, exact %v", a.Items, b.Items)
		}
	}
}

// TestADeltaLeavesThePreviousVersionUntouched: a delta that changes rows
// of the same items builds new float32 and int8 matrices; the version
// before it, which requests may still be ranking against, keeps its own
// bit for bit.
func TestADeltaLeavesThePreviousVersionUntouched(t *testing.T) {
	const dim = 16
	prev, next := randomCapture(3000, dim), randomCapture(3000, dim)
	next.Version = 2
	for _, r := range []int{7, 2500} {
		next.Weights[r*(dim+1)] += 3
	}
	r, _ := newTestReplica(t, ReplicaOptions{Scoring: ScoringInt8}, nil)
	if err := r.Apply(snapshot.UpdateOf(nil, prev)); err != nil {
		t.Fatal(err)
	}
	old := r.head.Load()
	mat := slices.Clone(old.matrices[""])
	var w []int8
	if old.quant != nil {
		w = slices.Clone(old.quant[""].w)
	}
	if err := r.Apply(snapshot.UpdateOf(prev, next)); err != nil {
		t.Fatal(err)
	}
	if m := r.head.Load(); m == old || m.Kind != snapshot.KindDelta || len(m.dirty) == 0 {
		t.Fatalf("the delta did not make a new version recomputing items")
	}
	if !slices.Equal(old.matrices[""], mat) {
		t.Errorf("the delta changed the previous version's float32 matrix")
	}
	if old.quant != nil && !slices.Equal(old.quant[""].w, w) {
		t.Errorf("the delta changed the previous version's int8 matrix")
	}
}
