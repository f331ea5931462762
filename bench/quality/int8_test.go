package quality

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
)

// BenchmarkInt8OverlapMovieLens measures serve.scoring int8 on a trained
// model: the unified model learned from MovieLens small up to the
// validation cut (80%, memory lists included), served by an exact replica
// and an int8 one, asked the same whole-catalog requests (every engagement
// of the validation period, up to the 90% cut, excluding what the user
// engaged with before). It reports the share of the exact top 10 and top
// 100 that the int8 replica answers, over all canvases and the lowest of
// any canvas (run it with -benchtime 1x).
func BenchmarkInt8OverlapMovieLens(b *testing.B) {
	dir, err := datasets.SharedDataDir(".")
	if err != nil {
		b.Skipf("real data sets not available: %v", err)
	}
	for b.Loop() {
		reg, cat, evs, err := loadMovieLens(dir)
		if err != nil {
			b.Fatal(err)
		}
		cut, end := len(evs)*8/10, len(evs)*9/10
		m, err := train(MovieLensModel(), trainingStream(reg, cat, evs[:cut], 4, 0, 1), cat)
		if err != nil {
			b.Fatal(err)
		}
		replicas := map[string]*serve.Replica{}
		for _, scoring := range []string{serve.ScoringExact, serve.ScoringInt8} {
			r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, Scoring: scoring})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.Apply(snapshot.UpdateOf(nil, m.cap)); err != nil {
				b.Fatal(err)
			}
			replicas[scoring] = r
		}
		history := map[string][]string{}
		for _, e := range evs[:cut] {
			history[e.Context["user_id"]] = append(history[e.Context["user_id"]], e.ItemID)
		}
		for _, k := range []int{10, 100} {
			hits, total := map[string]int{}, map[string]int{}
			for _, e := range evs[cut:end] {
				u := e.Context["user_id"]
				req := &serve.Request{UseCase: e.Canvas, Context: e.Context, K: k, Exclude: history[u]}
				want, aerr := replicas[serve.ScoringExact].Recommend(context.Background(), req)
				if aerr != nil {
					b.Fatal(aerr)
				}
				got, aerr := replicas[serve.ScoringInt8].Recommend(context.Background(), req)
				if aerr != nil {
					b.Fatal(aerr)
				}
				in := map[string]bool{}
				for _, it := range got.Items {
					in[it.ID] = true
				}
				for _, it := range want.Items {
					if in[it.ID] {
						hits[e.Canvas]++
					}
				}
				total[e.Canvas] += len(want.Items)
			}
			all, allTotal, lowest := 0, 0, 1.0
			for _, c := range slices.Sorted(maps.Keys(total)) {
				all, allTotal = all+hits[c], allTotal+total[c]
				lowest = min(lowest, float64(hits[c])/float64(total[c]))
				b.Logf("top %d, %s: %d of %d exact items answered (%.4f)", k, c, hits[c], total[c], float64(hits[c])/float64(total[c]))
			}
			b.ReportMetric(float64(all)/float64(allTotal), fmt.Sprintf("top%d-overlap", k))
			b.ReportMetric(lowest, fmt.Sprintf("top%d-lowest-canvas", k))
		}
	}
}
