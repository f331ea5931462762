package online

import (
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
)

// TestLearnsPlantedStructure: the shared model must reach a high
// progressive AUC on every task of a world with a planted truth.
func TestLearnsPlantedStructure(t *testing.T) {
	tr, err := OpenTrainer(TrainerOptions{Model: DefaultModelConfig(), Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 3})
	for _, ex := range w.Examples(reg, 16000) {
		tr.Apply(&ex)
	}
	for task, p := range tr.Progress().All() {
		t.Logf("%s: %+v", task, p)
		if p.AUC < 0.75 {
			t.Errorf("%s: windowed progressive AUC %.3f, want >= 0.75", task, p.AUC)
		}
	}
}
