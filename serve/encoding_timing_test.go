package serve

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// BenchmarkEncoding measures what the compact row encodings save and cost:
// the compressed size of a full snapshot relative to float32 (in the same
// run), the largest absolute score error over whole-catalog rankings, and
// the overlap of the top 10 with the float32 model's.
//
//	go test -run '^$' -bench Encoding ./serve
func BenchmarkEncoding(b *testing.B) {
	reg, _ := ingest.NewRegistry(ingest.DefaultCanvases())
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: model.DefaultModelConfig(), Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	w := synth.NewWorld(synth.Options{Seed: 2})
	for _, ex := range w.Examples(reg, 20_000) {
		tr.Apply(&ex)
	}
	c, err := tr.Capture()
	if err != nil {
		b.Fatal(err)
	}
	exact := snapshot.UpdateOf(nil, c)
	_, base, err := snapshot.Encoded(exact.Delta, c.Config, snapshot.EncodingFloat32)
	if err != nil {
		b.Fatal(err)
	}
	ref := replicaWith(b, reg, exact)
	for _, enc := range []snapshot.Encoding{snapshot.EncodingFloat32, snapshot.EncodingFloat16, snapshot.EncodingInt8} {
		b.Run(string(enc), func(b *testing.B) {
			var d *snapshot.Delta
			var size int
			for i := 0; i < b.N; i++ {
				if d, size, err = snapshot.Encoded(exact.Delta, c.Config, enc); err != nil {
					b.Fatal(err)
				}
			}
			got := replicaWith(b, reg, &snapshot.Update{Manifest: exact.Manifest, Delta: d})
			maxErr, overlap := compare(b, w, ref, got)
			b.ReportMetric(float64(size), "bytes")
			b.ReportMetric(float64(size)/float64(base), "size/float32")
			b.ReportMetric(maxErr, "max-abs-score-err")
			b.ReportMetric(overlap, "top10-overlap")
		})
	}
	// serve.scoring int8 on this trained model: float32 rows, an int8 pass
	// over its 400 items, the best max(4k, k+64) re-ranked exactly.
	b.Run("scoring=int8", func(b *testing.B) {
		r, err := NewReplica(ReplicaOptions{Registry: reg, Scoring: ScoringInt8})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Apply(exact); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
		}
		for _, k := range []int{1, 10} {
			b.ReportMetric(topOverlap(b, w, ref, r, k), fmt.Sprintf("top%d-overlap", k))
		}
	})
}

// topOverlap is the share of the exact top k (ref's) that got answers,
// over 50 queries per canvas.
func topOverlap(b *testing.B, w *synth.World, ref, got *Replica, k int) float64 {
	hits, n := 0, 0
	for _, canvas := range w.Canvases() {
		for q := 0; q < 50; q++ {
			ctx, _ := w.Query(canvas, q)
			req := &Request{UseCase: canvas, Context: ctx, K: k}
			ra, aerr := ref.Recommend(context.Background(), req)
			rb, berr := got.Recommend(context.Background(), req)
			if aerr != nil || berr != nil {
				b.Fatal(aerr, berr)
			}
			top := map[string]bool{}
			for _, it := range ra.Items {
				top[it.ID] = true
			}
			for _, it := range rb.Items {
				if top[it.ID] {
					hits++
				}
			}
			n += len(ra.Items)
		}
	}
	return float64(hits) / float64(max(n, 1))
}

func replicaWith(b testing.TB, reg *ingest.Registry, u *snapshot.Update) *Replica {
	r, err := NewReplica(ReplicaOptions{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Apply(u); err != nil {
		b.Fatal(err)
	}
	return r
}

// compare ranks the whole catalog for 50 queries per canvas with both
// replicas and returns the largest score difference of an item and the mean
// top-10 overlap.
func compare(b *testing.B, w *synth.World, ref, got *Replica) (float64, float64) {
	var maxErr, overlap, n float64
	for _, canvas := range w.Canvases() {
		for q := 0; q < 50; q++ {
			ctx, _ := w.Query(canvas, q)
			all := &Request{UseCase: canvas, Context: ctx, K: 1000}
			ra, aerr := ref.Recommend(context.Background(), all)
			rb, berr := got.Recommend(context.Background(), all)
			if aerr != nil || berr != nil {
				b.Fatal(aerr, berr)
			}
			scores := map[string]float64{}
			for _, it := range rb.Items {
				scores[it.ID] = it.Score
			}
			top := map[string]bool{}
			for i, it := range ra.Items {
				if s, ok := scores[it.ID]; ok {
					maxErr = math.Max(maxErr, math.Abs(s-it.Score))
				}
				if i < 10 {
					top[it.ID] = true
				}
			}
			for _, it := range rb.Items[:min(10, len(rb.Items))] {
				if top[it.ID] {
					overlap++
				}
			}
			n += 10
		}
	}
	return maxErr, overlap / n
}
