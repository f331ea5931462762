package online

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
)

// The log stage's chunks may be done by the learner or by any number of
// helpers, in any interleaving: every record must still read the memory
// features and leave the registry and popularity exactly as doing the
// records one by one does.
func TestLogStageGivesTheInlineResultsWhoeverDoesTheChunks(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	exs := synth.NewWorld(synth.Options{Seed: 11}).Examples(reg, 3*logStageChunk*8+5)
	open := func() *Trainer {
		tr, err := OpenTrainer(TrainerOptions{Model: model.DefaultModelConfig(), Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	fill := func(tr *Trainer, b *batch, from, to int) {
		b.recs, b.n = make([]prepared, to-from), to-from
		for i := range b.recs {
			b.recs[i].ex = exs[from+i]
			b.recs[i].f.featurize(tr.feat, tr.cfg.Memory, &b.recs[i].ex)
		}
	}

	inline, staged := open(), open()
	r := rand.New(rand.NewPCG(3, 4))
	for from := 0; from < len(exs); {
		to := min(from+1+r.IntN(3*logStageChunk), len(exs))
		var want, got batch
		fill(inline, &want, from, to)
		for i := range want.recs {
			inline.logInline(&want.recs[i].ex, &want.recs[i].f)
			inline.track(&want.recs[i].ex)
		}

		fill(staged, &got, from, to)
		s := staged.startLogStage(got.recs[:got.n])
		var helpers sync.WaitGroup
		for range 2 {
			helpers.Go(func() {
				for staged.stage.Load() == s {
					if !staged.helpLogStage() {
						runtime.Gosched()
					}
				}
			})
		}
		seen := make([][]float32, len(got.recs)) // what the learner read
		for i := range got.recs {
			if r.IntN(4) == 0 {
				runtime.Gosched() // let the helpers get ahead
			}
			s.await(i)
			seen[i] = slices.Clone(got.recs[i].f.memX)
			staged.track(&got.recs[i].ex)
		}
		s.finish()
		helpers.Wait()

		for i := range want.recs {
			if !slices.Equal(seen[i], want.recs[i].f.memX) {
				t.Fatalf("record %d: the learner read memory features %v, one by one %v", from+i, seen[i], want.recs[i].f.memX)
			}
		}
		from = to
	}
	if !reflect.DeepEqual(staged.items, inline.items) {
		t.Errorf("the item registries differ: %d items staged, %d one by one", len(staged.items), len(inline.items))
	}
	if !reflect.DeepEqual(staged.pop, inline.pop) {
		t.Errorf("popularity differs")
	}
}
