package load

import (
	"context"
	"testing"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
)

// BenchmarkRecommendSynthetic100k is one request of the serving benchmark
// in process (no HTTP): a 100,000-item synthetic model of dim 64, top 100.
func BenchmarkRecommendSynthetic100k(b *testing.B) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1, Items: 100000, Users: 1000})
	m := NewModel(w, reg, 64, 100, 1)
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Apply(m.Full()); err != nil {
		b.Fatal(err)
	}
	var reqs []*serve.Request
	for q := range 100 {
		for _, c := range w.Canvases() {
			ctx, _ := w.Query(c, q)
			reqs = append(reqs, &serve.Request{UseCase: c, Context: ctx, K: 100})
		}
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, aerr := r.Recommend(context.Background(), reqs[i%len(reqs)]); aerr != nil {
			b.Fatal(aerr)
		}
		i++
	}
}
