package online

import (
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
)

// TestLearnsPlantedStructure: the shared model must reach a high
// progressive AUC on every task of a world with a planted truth.
func TestLearnsPlantedStructure(t *testing.T) {
	skipUnderRace(t)
	tr, err := OpenTrainer(TrainerOptions{Model: model.DefaultModelConfig(), Dir: t.TempDir()})
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

// In isolated mode no row is shared between tasks (the per-task
// baseline), each task still learns, and learning one task leaves the
// others' scores untouched; in the shared mode tasks share rows.
func TestIsolatedModeSharesNothing(t *testing.T) {
	skipUnderRace(t)
	rowsOf := func(isolated bool, task string) map[uint64]bool {
		cfg := model.DefaultModelConfig()
		cfg.Isolated = isolated
		tr := openTest(t, TrainerOptions{Model: cfg})
		defer tr.Close()
		for _, e := range synthExamples(t, 3000) {
			if e.Task == task {
				applyAll(t, tr, []stream.Example{e})
			}
		}
		out := map[uint64]bool{}
		for _, id := range capture(t, tr).IDs {
			out[id] = true
		}
		return out
	}
	overlap := func(isolated bool) int {
		a, b := rowsOf(isolated, "notifications"), rowsOf(isolated, "search")
		n := 0
		for id := range a {
			if b[id] {
				n++
			}
		}
		return n
	}
	if n := overlap(true); n != 0 {
		t.Fatalf("isolated: %d rows shared by notifications and search", n)
	}
	if n := overlap(false); n == 0 {
		t.Fatal("shared: no row shared by notifications and search")
	}
	cfg := model.DefaultModelConfig()
	cfg.Isolated = true
	tr := openTest(t, TrainerOptions{Model: cfg})
	defer tr.Close()
	exs := synthExamples(t, 16000)
	probe := exs[0]
	probe.Task = "related_items"
	for _, e := range exs {
		if e.Task != "related_items" {
			applyAll(t, tr, []stream.Example{e})
		}
	}
	if z := score(tr, &probe); z != 0 {
		t.Fatalf("isolated: related_items scores %v after learning only other tasks, want the untrained 0", z)
	}
	applyAll(t, tr, exs)
	for task, p := range tr.Progress().All() {
		if p.AUC < 0.7 {
			t.Errorf("isolated %s: progressive AUC %.3f, want >= 0.7", task, p.AUC)
		}
	}
}
