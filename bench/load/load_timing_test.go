package load

import (
	"context"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
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

// BenchmarkScoringInt8Synthetic100k ranks the serving benchmark's queries
// (100,000 items, dim 64, top 100) with an exact replica and an int8 one
// in turn, and reports each one's time per request and the share of the
// exact top 100 the int8 replica answers (its overlap on this data).
func BenchmarkScoringInt8Synthetic100k(b *testing.B) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1, Items: 100000, Users: 1000})
	m := NewModel(w, reg, 64, 100, 1)
	full := m.Full()
	replica := func(scoring string) *serve.Replica {
		r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, Scoring: scoring})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Apply(full); err != nil {
			b.Fatal(err)
		}
		return r
	}
	exact, int8 := replica(serve.ScoringExact), replica(serve.ScoringInt8)
	var reqs []*serve.Request
	for q := range 100 {
		for _, c := range w.Canvases() {
			ctx, _ := w.Query(c, q)
			reqs = append(reqs, &serve.Request{UseCase: c, Context: ctx, K: 100})
		}
	}
	var tExact, tInt8 time.Duration
	hits, total, i := 0, 0, 0
	for b.Loop() {
		req := reqs[i%len(reqs)]
		i++
		start := time.Now()
		want, aerr := exact.Recommend(context.Background(), req)
		mid := time.Now()
		got, berr := int8.Recommend(context.Background(), req)
		tExact, tInt8 = tExact+mid.Sub(start), tInt8+time.Since(mid)
		if aerr != nil || berr != nil {
			b.Fatal(aerr, berr)
		}
		in := map[string]bool{}
		for _, it := range want.Items {
			in[it.ID] = true
		}
		for _, it := range got.Items {
			if in[it.ID] {
				hits++
			}
		}
		total += len(want.Items)
	}
	b.ReportMetric(float64(tExact.Microseconds())/float64(b.N), "exact-us/req")
	b.ReportMetric(float64(tInt8.Microseconds())/float64(b.N), "int8-us/req")
	b.ReportMetric(float64(hits)/float64(max(total, 1)), "top100-overlap")
}

// BenchmarkMemoryBoostsSynthetic100k ranks the serving benchmark's
// queries (100,000 items, dim 64, top 100) with the synthetic model's
// memory lists (a full list for every memory key of every query) and with
// the same model without them, request by request in turn, and reports
// each one's time per request and their ratio: the serving cost of the
// memory term.
func BenchmarkMemoryBoostsSynthetic100k(b *testing.B) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1, Items: 100000, Users: 1000})
	m := NewModel(w, reg, 64, 100, 1)
	replica := func(withLists bool) *serve.Replica {
		c := *m.Capture
		if !withLists {
			c.Memory = nil
		}
		r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg})
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Apply(snapshot.UpdateOf(nil, &c)); err != nil {
			b.Fatal(err)
		}
		return r
	}
	with, without := replica(true), replica(false)
	var reqs []*serve.Request
	for q := range 100 {
		for _, c := range w.Canvases() {
			ctx, _ := w.Query(c, q)
			reqs = append(reqs, &serve.Request{UseCase: c, Context: ctx, K: 100})
		}
	}
	var tWith, tWithout time.Duration
	i := 0
	for b.Loop() {
		for _, r := range []*serve.Replica{with, without} {
			start := time.Now()
			if _, aerr := r.Recommend(context.Background(), reqs[i%len(reqs)]); aerr != nil {
				b.Fatal(aerr)
			}
			if r == with {
				tWith += time.Since(start)
			} else {
				tWithout += time.Since(start)
			}
		}
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(tWith.Microseconds())/n, "us/req-memory")
	b.ReportMetric(float64(tWithout.Microseconds())/n, "us/req-no-memory")
	b.ReportMetric(float64(tWith)/float64(tWithout), "memory/no-memory")
}
