package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// plantedCategories is a world the dot product cannot fit at dim 2: each
// of 120 categories owns 3 items drawn at random from 360, with no
// structure shared between categories.
func plantedCategories(reg *ingest.Registry, n int) ([]stream.Example, map[string][]string) {
	rng := rand.New(rand.NewPCG(7, 7))
	owns := map[string][]string{}
	perm := rng.Perm(360)
	for c := 0; c < 120; c++ {
		for j := 0; j < 3; j++ {
			owns[fmt.Sprintf("cat-%d", c)] = append(owns[fmt.Sprintf("cat-%d", c)], fmt.Sprintf("it-%d", perm[3*c+j]))
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var exs []stream.Example
	for i := 0; i < n; i++ {
		cat := fmt.Sprintf("cat-%d", rng.IntN(120))
		ev := &ingest.Event{Canvas: "category_exploration", Time: start.Add(time.Duration(i) * time.Second),
			Context: map[string]string{"user_id": fmt.Sprintf("u-%d", rng.IntN(500)), "category": cat}}
		ex := reg.Normalize(ev)
		ex.ItemID, ex.Label, ex.Weight, ex.Item = owns[cat][rng.IntN(3)], 1, 1, stream.ItemMeta{Type: "video"}
		exs = append(exs, ex)
		for k := 0; k < 4; k++ {
			neg := ex
			neg.ItemID, neg.Label, neg.SampleProb = fmt.Sprintf("it-%d", rng.IntN(360)), 0, 1.0/360
			exs = append(exs, neg)
		}
	}
	return exs, owns
}

// trainedOnPlanted trains a model of dim (memory on or off) on n
// examples of the planted world and returns its capture, the registry and
// each category's own items.
func trainedOnPlanted(t *testing.T, dim int, memory bool, n int) (*model.Capture, *ingest.Registry, map[string][]string) {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultModelConfig()
	cfg.Dim, cfg.Memory.Enabled = dim, memory
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	exs, owns := plantedCategories(reg, n)
	for i := range exs {
		if err := tr.Apply(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	return c, reg, owns
}

// recallOfPlanted trains a dim-2 model on the planted world and returns
// the recall@3 of each category's own items through a replica.
func recallOfPlanted(t *testing.T, memory bool) float64 {
	t.Helper()
	c, reg, owns := trainedOnPlanted(t, 2, memory, 6000)
	r := replicaWith(t, reg, snapshot.UpdateOf(nil, c))
	hits := 0
	for cat, items := range owns {
		resp, aerr := r.Recommend(context.Background(), &Request{UseCase: "category_exploration", K: 3,
			Context: map[string]string{"user_id": "u-new", "category": cat}})
		if aerr != nil {
			t.Fatal(aerr)
		}
		for _, it := range resp.Items {
			if slices.Contains(items, it.ID) {
				hits++
			}
		}
	}
	return float64(hits) / float64(3*len(owns))
}

// A context -> items structure that a dim-2 dot product cannot hold is
// remembered by the memory lists and served: recall@3 of each category's
// own items is near perfect with memory and far lower without.
func TestMemoryLearnsWhatTheDotProductCannotFit(t *testing.T) {
	with, without := recallOfPlanted(t, true), recallOfPlanted(t, false)
	t.Logf("recall@3 of planted category items: %.3f with memory, %.3f without", with, without)
	if with < 0.9 {
		t.Errorf("recall@3 with memory %.3f, want >= 0.9", with)
	}
	if with < without+0.3 {
		t.Errorf("memory adds %.3f to recall@3 (%.3f vs %.3f), want >= 0.3", with-without, with, without)
	}
}

// Boosts are merged into exact scoring: an item with a large memory term
// enters the top k over the whole catalog and among explicit candidates,
// and an item without one keeps its dot-product score.
func TestBoostsMergeIntoExactTopK(t *testing.T) {
	const n, dim = 3000, 2
	mat := make([]float32, n*(dim+1))
	for i := 0; i < n; i++ {
		mat[i*(dim+1)] = float32(i) / n // item i scores i/n: the best is n-1
	}
	cv := []float32{1, 0}
	boosts := []boost{{idx: 5, z: 2}, {idx: 2048, z: 0.5}}
	for _, shards := range []int{1, 3} {
		top, err := rankTop(&scoreSpec{mat: mat, cv: cv, boosts: boosts, k: 3, shards: shards})
		if err != nil {
			t.Fatal(err)
		}
		got := []int{top[0].idx, top[1].idx, top[2].idx}
		if want := []int{5, 2048, n - 1}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%d shards: top 3 %v, want %v (5: 0.0017+2, 2048: 0.68+0.5, then the best dot product 1.0)", shards, got, want)
		}
	}
	top, err := rankTop(&scoreSpec{mat: mat, cv: cv, boosts: boosts, k: 2, idx: []int{7, 5, 2999}, shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	if top[0].idx != 5 || top[1].idx != 2999 {
		t.Errorf("among candidates: top %v, want 5 (boosted) then 2999", top)
	}
}
