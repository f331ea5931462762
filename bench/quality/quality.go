package quality

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Method is one model the table compares.
type Method struct {
	Name string
	// Model is nil for the popularity baseline.
	Model *model.ModelConfig
}

// Options configures a quality run.
type Options struct {
	// DataDir holds movielens-small/.
	DataDir string
	// TrainFraction of the events (in time order) is the past; the rest,
	// from the first event at or after the cut's time, is the future.
	TrainFraction float64
	// EndFraction ends the evaluated future (0: the end of the log), so a
	// validation period can precede the test period.
	EndFraction float64
	// Negatives sampled per training positive.
	Negatives int
	// Unigram is the fraction of negatives drawn in proportion to past
	// engagements; the rest are uniform over the catalog.
	Unigram float64
	Seed    uint64
	Methods []Method
}

// ContextPopularity names the per-context popularity baseline method.
const ContextPopularity = "context popularity"

// MovieLensModel is the model configuration of the MovieLens table: the
// defaults with accumulator forgetting (model.forget 0.999: a catalog
// whose popularity drifts over 22 years), a small init (0.01), and no log-Q
// correction: with uniform negatives q = 1/N is a constant, so the
// correction only shifts the training logit by ln N and slows AdaGrad.
func MovieLensModel() model.ModelConfig {
	c := model.DefaultModelConfig()
	c.Forget, c.InitScale, c.LogQCorrection = 0.999, 0.01, false
	return c
}

// DefaultMethods are the unified model, the per-task models and
// popularity, then variants of the unified model: plain AdaGrad (the
// defaults' forget 1), per-coordinate AdaGrad, log-Q correction on.
func DefaultMethods() []Method {
	unified, isolated, plain, coord, logQ := MovieLensModel(), MovieLensModel(), MovieLensModel(), MovieLensModel(), MovieLensModel()
	isolated.Isolated = true
	plain.Forget = 1
	coord.Optimizer = model.OptimizerCoordinate
	logQ.LogQCorrection = true
	return []Method{{Name: "unified", Model: &unified}, {Name: "per-task", Model: &isolated}, {Name: "popularity"},
		{Name: "unified, forget 1", Model: &plain}, {Name: "unified, coordinate", Model: &coord}, {Name: "unified, log-Q", Model: &logQ}}
}

// Result is the quality of one method on one task's future.
type Result struct {
	Task, Method string
	AUC          float64 // positives vs explicit and uniformly sampled negatives
	Recall10     float64 // the engaged item in the top 10 of the whole catalog
	NDCG10       float64
	Positives    int // test positives ranked
}

// Report is a run's results and what it trained on.
type Report struct {
	Results                    []Result
	TrainExamples, TestEvents  int
	Split                      time.Time
	TrainSeconds, TotalSeconds float64
}

// MovieLens trains every method on the past of MovieLens small and
// evaluates it on the future.
func MovieLens(opts Options) (*Report, error) {
	start := time.Now()
	reg, cat, evs, err := loadMovieLens(opts.DataDir)
	if err != nil {
		return nil, err
	}
	cut := int(float64(len(evs)) * opts.TrainFraction)
	split := evs[cut].Time
	for cut > 0 && !evs[cut-1].Time.Before(split) {
		cut--
	}
	trainExs := trainingStream(reg, cat, evs[:cut], opts.Negatives, opts.Unigram, opts.Seed)
	rep := &Report{TrainExamples: len(trainExs), TestEvents: len(evs) - cut, Split: split}
	scorers := make([]scorer, len(opts.Methods))
	for i, m := range opts.Methods {
		switch {
		case m.Name == ContextPopularity:
			scorers[i] = countContextPopularity(trainExs, cat)
			continue
		case m.Model == nil:
			scorers[i] = countPopularity(trainExs, cat)
			continue
		}
		if scorers[i], err = train(*m.Model, trainExs, cat); err != nil {
			return nil, fmt.Errorf("cannot train %s: %w", m.Name, err)
		}
	}
	rep.TrainSeconds = time.Since(start).Seconds()
	end := len(evs)
	if opts.EndFraction > 0 {
		end = int(float64(len(evs)) * opts.EndFraction)
	}
	test := testSet(reg, cat, evs[:end], cut, opts.Seed)
	rep.Results = evaluateAll(opts.Methods, scorers, test, cat)
	rep.TotalSeconds = time.Since(start).Seconds()
	return rep, nil
}

// loadMovieLens reads MovieLens small from the shared data directory dir:
// the registry of the built-in canvases its events are labelled with, its
// catalog and its events in time order.
func loadMovieLens(dir string) (*ingest.Registry, *catalog, []ingest.Event, error) {
	ml, err := datasets.LoadMovieLens(filepath.Join(dir, "movielens-small"))
	if err != nil {
		return nil, nil, nil, err
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		return nil, nil, nil, err
	}
	return reg, movieCatalog(ml), ml.Events(time.Time{}), nil
}

// testCase is a labelled future example with what ranking must exclude.
type testCase struct {
	ex      stream.Example
	exclude []int // items the user engaged with before, and the source item
}

type testData struct {
	cases []testCase
	// negatives for AUC: explicit ones are in cases (label 0); these are
	// uniformly drawn catalog items for each positive.
	uniform [][]int
}

// testSet labels the future events and records, for each, the items the
// user had engaged with before it (never recommended again).
func testSet(reg *ingest.Registry, cat *catalog, evs []ingest.Event, cut int, seed uint64) *testData {
	rng := rand.New(rand.NewPCG(seed, 2))
	history := map[string][]int{}
	td := &testData{}
	for i := range evs {
		e := &evs[i]
		user := e.Context["user_id"]
		item := cat.index[e.ItemID]
		if i >= cut {
			if ex, ok := label(reg, e); ok {
				excl := slices.Clone(history[user])
				if src, ok := cat.index[e.Context["source_item_id"]]; ok && !slices.Contains(excl, src) {
					excl = append(excl, src)
				}
				td.cases = append(td.cases, testCase{ex: ex, exclude: excl})
				var neg []int
				for len(neg) < 4 && ex.Label > 0 {
					if n := rng.IntN(len(cat.ids)); n != item {
						neg = append(neg, n)
					}
				}
				td.uniform = append(td.uniform, neg)
			}
		}
		if !slices.Contains(history[user], item) {
			history[user] = append(history[user], item)
		}
	}
	return td
}

func evaluateAll(methods []Method, scorers []scorer, td *testData, cat *catalog) []Result {
	for _, s := range scorers {
		if m, ok := s.(*trained); ok {
			for _, task := range []string{"notifications", "related_items", "search", "category_exploration"} {
				m.itemMatrix(task)
			}
		}
	}
	out := make([][]Result, len(methods))
	var wg sync.WaitGroup
	for i := range methods {
		wg.Go(func() { out[i] = evaluate(methods[i].Name, scorers[i], td, cat) })
	}
	wg.Wait()
	var all []Result
	for _, r := range out {
		all = append(all, r...)
	}
	return all
}

type taskAcc struct {
	scores, labels []float32
	recall, ndcg   float64
	positives      int
}

func evaluate(name string, s scorer, td *testData, cat *catalog) []Result {
	acc := map[string]*taskAcc{}
	var buf []float32
	for i := range td.cases {
		c := &td.cases[i]
		a := acc[c.ex.Task]
		if a == nil {
			a = &taskAcc{}
			acc[c.ex.Task] = a
		}
		a.scores = append(a.scores, s.pair(&c.ex))
		a.labels = append(a.labels, c.ex.Label)
		if c.ex.Label == 0 {
			continue
		}
		for _, n := range td.uniform[i] {
			neg := c.ex
			neg.ItemID, neg.Item = cat.ids[n], cat.meta[n]
			a.scores = append(a.scores, s.pair(&neg))
			a.labels = append(a.labels, 0)
		}
		buf = s.items(&c.ex, buf)
		r := rank(buf, cat.index[c.ex.ItemID], c.exclude)
		if r < 10 {
			a.recall++
			a.ndcg += 1 / math.Log2(r+2)
		}
		a.positives++
	}
	var out []Result
	for task, a := range acc {
		r := Result{Task: task, Method: name, AUC: online.AUC(a.scores, a.labels), Positives: a.positives}
		if a.positives > 0 {
			r.Recall10, r.NDCG10 = a.recall/float64(a.positives), a.ndcg/float64(a.positives)
		}
		out = append(out, r)
	}
	return out
}

// rank is the expected 0-based position of target among the items not
// excluded, ties broken at random.
func rank(scores []float32, target int, exclude []int) float64 {
	t := scores[target]
	var greater, ties float64
	for i, s := range scores {
		if s > t {
			greater++
		} else if s == t && i != target {
			ties++
		}
	}
	for _, e := range exclude {
		if e == target {
			continue
		}
		if scores[e] > t {
			greater--
		} else if scores[e] == t {
			ties--
		}
	}
	return greater + ties/2
}

// Markdown renders the results as one table row per task and method.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| task | method | AUC | recall@10 | NDCG@10 | test positives |\n|---|---|---|---|---|---|\n")
	res := slices.Clone(r.Results)
	order := map[string]int{"notifications": 0, "related_items": 1, "search": 2, "category_exploration": 3}
	slices.SortStableFunc(res, func(a, b Result) int { return order[a.Task] - order[b.Task] })
	for _, x := range res {
		fmt.Fprintf(&b, "| %s | %s | %.4f | %.4f | %.4f | %d |\n", x.Task, x.Method, x.AUC, x.Recall10, x.NDCG10, x.Positives)
	}
	return b.String()
}
