package online

import (
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// BenchmarkApply measures decode + featurize + score + update of one
// example, without Kafka or Pebble commits, for both row optimizers.
func BenchmarkApply(b *testing.B) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	var recs [][]byte
	for _, ex := range synth.NewWorld(synth.Options{Seed: 1}).Examples(reg, 20000) {
		recs = append(recs, stream.AppendExample(nil, &ex))
	}
	for _, opt := range []string{model.OptimizerRowwise, model.OptimizerCoordinate} {
		b.Run(opt, func(b *testing.B) {
			cfg := model.DefaultModelConfig()
			cfg.Optimizer = opt
			tr, err := OpenTrainer(TrainerOptions{Model: cfg, Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			var ex stream.Example
			i := 0
			for b.Loop() {
				if err := stream.DecodeExample(recs[i%len(recs)], &ex); err != nil {
					b.Fatal(err)
				}
				tr.apply(&ex)
				i++
			}
		})
	}
}
