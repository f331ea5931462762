package serve

import (
	"context"
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// TestServesWhatTheTrainerLearned trains on a synthetic world, applies the
// capture to a replica and checks that the planted relevant items rank far
// above chance for every canvas.
func TestServesWhatTheTrainerLearned(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	w := synth.NewWorld(synth.Options{Seed: 3})
	for _, ex := range w.Examples(reg, 8000) {
		tr.Apply(&ex)
	}
	c, err := tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	r := replicaWith(t, reg, snapshot.UpdateOf(nil, c))
	for _, canvas := range w.Canvases() {
		var hits, total float64
		for i := 0; i < 40; i++ {
			ctx, relevant := w.Query(canvas, i)
			resp, aerr := r.Recommend(context.Background(), &Request{UseCase: canvas, Context: ctx, K: 10})
			if aerr != nil {
				t.Fatal(aerr)
			}
			for _, it := range resp.Items {
				if relevant[it.ID] {
					hits++
				}
			}
			total += float64(len(relevant))
		}
		recall, random := hits/total, 10/float64(len(w.Items()))
		t.Logf("%s: recall@10 %.3f (%.1fx random)", canvas, recall, recall/random)
		if recall < 3*random {
			t.Errorf("%s: recall@10 %.3f is not 3x random %.3f", canvas, recall, random)
		}
	}
}
