package online

import (
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// synthExamples labels a synthetic world's impressions by whether they were
// clicked, as the ingest join does, in event order.
func synthExamples(w *synth.World, requests int) []stream.Example {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		panic(err)
	}
	var out []stream.Example
	for i := 0; i < requests; i++ {
		evs := w.Next()
		clicked := map[string]bool{}
		for _, e := range evs {
			if e.Action == "click" {
				clicked[e.ItemID] = true
			}
		}
		for _, e := range evs {
			if e.Action != "impression" {
				continue
			}
			ex := reg.Normalize(&e)
			ex.Weight = 1
			if clicked[e.ItemID] {
				ex.Label = 1
			}
			out = append(out, ex)
		}
	}
	return out
}

// TestLearnsPlantedStructure: the shared model must reach a high
// progressive AUC on every task of a world with a planted truth.
func TestLearnsPlantedStructure(t *testing.T) {
	tr, err := OpenTrainer(TrainerOptions{Model: DefaultModelConfig(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	w := synth.NewWorld(synth.Options{Seed: 3})
	for _, ex := range synthExamples(w, 16000) {
		tr.Apply(&ex)
	}
	for task, p := range tr.Progress().All() {
		t.Logf("%s: %+v", task, p)
		if p.AUC < 0.75 {
			t.Errorf("%s: windowed progressive AUC %.3f, want >= 0.75", task, p.AUC)
		}
	}
}
