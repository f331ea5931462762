package online

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// BenchmarkPrepareBatch measures the trainer's first stage alone: a batch
// of 2,048 synthetic example records decoded and featurized by 1, 2 and
// 4 prepare workers (trainer.prepare_workers), in records per second.
//
//	go test -run '^$' -bench PrepareBatch ./online
func BenchmarkPrepareBatch(b *testing.B) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	var recs []*kgo.Record
	for _, ex := range synth.NewWorld(synth.Options{Seed: 1}).Examples(reg, batchSize) {
		recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &ex)})
	}
	recs = recs[:batchSize] // a request gives several examples
	feat, mem := model.Featurizer{}, model.DefaultMemoryConfig()
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			decs := make([]*stream.ExampleDecoder, workers)
			for i := range decs {
				decs[i] = stream.NewExampleDecoder()
			}
			var bt batch
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				bt.n = 0
				for _, r := range recs {
					bt.add(r)
				}
				bt.decode(decs, feat, mem, func() {})
			}
			b.ReportMetric(float64(b.N*len(recs))/time.Since(start).Seconds(), "records/s")
		})
	}
}
