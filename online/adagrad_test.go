package online

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// score is the model's logit for e, as serving computes it.
func score(tr *Trainer, e *stream.Example) float32 {
	rows := func(ids []uint64) [][]float32 {
		var out [][]float32
		for _, id := range ids {
			if slot, ok := tr.rows.find(id); ok {
				out = append(out, tr.rows.w(slot))
			} else {
				out = append(out, nil)
			}
		}
		return out
	}
	d := tr.cfg.Dim
	tp := model.NewTaskParams(d)
	if ts := tr.tasks[e.Task]; ts != nil {
		tp = ts.p
	}
	c, v := make([]float32, d), make([]float32, d+1)
	bias := model.ContextVector(c, nil, tp, rows(tr.feat.Context(nil, e.Task, e.Context, time.UnixMilli(e.EventTime))))
	model.ItemVector(v, rows(tr.feat.Item(nil, e.Task, e.ItemID, e.Item)))
	return model.Logit(c, bias, v)
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// A non-finite weight or label changes no parameter, and training goes on.
func TestNonFiniteExamplesAreNotLearned(t *testing.T) {
	tr := openTest(t, TrainerOptions{})
	defer tr.Close()
	good := ex("search", "u-1", "m-1", t0, 1)
	applyAll(t, tr, []stream.Example{good})
	before := capture(t, tr)
	for _, bad := range []stream.Example{
		{Task: "search", ItemID: "m-1", EventTime: good.EventTime, Label: 1, Weight: float32(math.NaN()), Context: good.Context},
		{Task: "search", ItemID: "m-1", EventTime: good.EventTime, Label: float32(math.Inf(1)), Weight: 1, Context: good.Context},
	} {
		applyAll(t, tr, []stream.Example{bad})
	}
	after := capture(t, tr)
	after.Applied = before.Applied
	sameModel(t, before, after)
	if !slices.Equal(before.Popular["search"], after.Popular["search"]) {
		t.Errorf("popularity changed by non-finite examples: %v, then %v", before.Popular["search"], after.Popular["search"])
	}
	z := score(tr, &good)
	if math.IsNaN(float64(z)) || math.IsInf(float64(z), 0) {
		t.Fatalf("logit %v after non-finite examples", z)
	}
}

// The gradient of one example is clipped: weights 1e6 and 1e7 both move
// the model by the clip, so they give the same model; an unclipped weight
// of 1 does not.
func TestGradientIsClipped(t *testing.T) {
	model := func(w float32) *model.Capture {
		tr := openTest(t, TrainerOptions{})
		defer tr.Close()
		e := ex("search", "u-1", "m-1", t0, 1)
		e.Weight = w
		applyAll(t, tr, []stream.Example{e, e})
		return capture(t, tr)
	}
	big, bigger, one := model(1e6), model(1e7), model(1)
	sameModel(t, big, bigger)
	if one.Tasks["search"].Bias == big.Tasks["search"].Bias {
		t.Fatal("a weight of 1 moved the task bias as much as a clipped weight of 1e6")
	}
}

// L2 (decoupled weight decay) shrinks the rows it updates.
func TestL2ShrinksRows(t *testing.T) {
	norm := func(l2 float64) float64 {
		cfg := model.DefaultModelConfig()
		cfg.L2 = l2
		tr := openTest(t, TrainerOptions{Model: cfg})
		defer tr.Close()
		applyAll(t, tr, synthExamples(t, 500))
		var s float64
		for _, w := range capture(t, tr).Weights {
			s += float64(w) * float64(w)
		}
		return math.Sqrt(s)
	}
	without, with := norm(0), norm(0.5)
	if !(with < 0.9*without) {
		t.Fatalf("L2 0.5 gives weight norm %.3f, L2 0 gives %.3f: want clearly smaller", with, without)
	}
}

// A sampled negative (SampleProb q) is learned with the logit z - ln q:
// the rarer its draw, the harder it pushes the score down; with the
// correction off it is learned like a logged negative.
func TestLogQCorrectionOfSampledNegatives(t *testing.T) {
	after := func(q float32, logQ bool) float32 {
		cfg := model.DefaultModelConfig()
		cfg.LogQCorrection = logQ
		tr := openTest(t, TrainerOptions{Model: cfg})
		defer tr.Close()
		neg := ex("search", "u-1", "m-1", t0, 0)
		neg.SampleProb = q
		applyAll(t, tr, []stream.Example{neg})
		return score(tr, &neg)
	}
	logged, sampled, rare := after(0, true), after(0.1, true), after(0.001, true)
	if !(rare < sampled && sampled < logged) {
		t.Fatalf("logit after one negative: logged %.4f, q=0.1 %.4f, q=0.001 %.4f: want decreasing", logged, sampled, rare)
	}
	if off := after(0.001, false); off != logged {
		t.Fatalf("correction off: q=0.001 gives %.4f, a logged negative %.4f", off, logged)
	}
}

// Per-coordinate AdaGrad keeps one accumulator per weight and learns the
// planted structure too.
func TestCoordinateAdaGrad(t *testing.T) {
	skipUnderRace(t)
	cfg := model.DefaultModelConfig()
	cfg.Optimizer = model.OptimizerCoordinate
	tr := openTest(t, TrainerOptions{Model: cfg})
	defer tr.Close()
	if got := tr.rows.stride; got != 2*cfg.Dim+2 {
		t.Fatalf("row stride %d, want weights+bias+one accumulator each = %d", got, 2*cfg.Dim+2)
	}
	applyAll(t, tr, synthExamples(t, 16000))
	for task, p := range tr.Progress().All() {
		if p.AUC < 0.75 {
			t.Errorf("%s: windowed progressive AUC %.3f, want >= 0.75", task, p.AUC)
		}
	}
}
