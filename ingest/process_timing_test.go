package ingest_test

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// BenchmarkProcess measures the ingest stage's own work per event (decode,
// validate, dedupe, join, changelog and example encoding) without a broker:
// batches of 10,000 synthetic events over 4 partitions, outputs discarded.
func BenchmarkProcess(b *testing.B) {
	w := synth.NewWorld(synth.Options{Seed: 1, Step: 100 * time.Millisecond})
	var recs []*kgo.Record
	offsets := map[int32]int64{}
	for len(recs) < 200_000 {
		for _, e := range w.Next() {
			v, _ := json.Marshal(e)
			h := fnv.New32a()
			h.Write([]byte(e.RequestID))
			p := int32(h.Sum32() % 4)
			recs = append(recs, &kgo.Record{Partition: p, Offset: offsets[p], Value: v})
			offsets[p]++
		}
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for events < b.N {
		g := ingest.New(ingest.Options{Registry: reg, Topics: stream.DefaultTopics(), Changelog: "changelog",
			AllowedLateness: 5 * time.Second, MaxEventBytes: 64 << 10})
		for i := 0; i < len(recs) && events < b.N; i += 10_000 {
			batch := recs[i:min(i+10_000, len(recs))]
			if err := g.Process(context.Background(), batch, func(*kgo.Record) {}); err != nil {
				b.Fatal(err)
			}
			g.Commit()
			events += len(batch)
		}
	}
}
