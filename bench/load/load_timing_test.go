package load

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
	"github.com/unirec/unirec/snapshot"
)

// synthetic100k is the serving benchmark's world in process: the
// registry, a 100,000-item synthetic model of dim 64 and 100 queries per
// canvas asking for the top 100.
type synthetic100k struct {
	reg  *ingest.Registry
	m    *Model
	reqs []*serve.Request
}

func newSynthetic100k(b *testing.B) *synthetic100k {
	b.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		b.Fatal(err)
	}
	w := synth.NewWorld(synth.Options{Seed: 1, Items: 100000, Users: 1000})
	f := &synthetic100k{reg: reg, m: NewModel(w, reg, 64, 100, 1)}
	for q := range 100 {
		for _, c := range w.Canvases() {
			ctx, _ := w.Query(c, q)
			f.reqs = append(f.reqs, &serve.Request{UseCase: c, Context: ctx, K: 100})
		}
	}
	return f
}

// replica returns a replica of f's registry with opts that applied u.
func (f *synthetic100k) replica(b *testing.B, opts serve.ReplicaOptions, u *snapshot.Update) *serve.Replica {
	b.Helper()
	opts.Registry = f.reg
	r, err := serve.NewReplica(opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Apply(u); err != nil {
		b.Fatal(err)
	}
	return r
}

// BenchmarkRecommendSynthetic100k is one request of the serving benchmark
// in process (no HTTP): a 100,000-item synthetic model of dim 64, top 100.
func BenchmarkRecommendSynthetic100k(b *testing.B) {
	f := newSynthetic100k(b)
	r, reqs := f.replica(b, serve.ReplicaOptions{}, f.m.Full()), f.reqs
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, aerr := r.Recommend(context.Background(), reqs[i%len(reqs)]); aerr != nil {
			b.Fatal(aerr)
		}
		i++
	}
}

// BenchmarkHTTPSynthetic100k is the serving benchmark's request through
// the whole answer path in one process: the client encodes it, the
// replica's HTTP handler decodes, ranks (int8, the default) and encodes
// the answer, and the client decodes it, four requests in flight over a
// real loopback connection. It reports the process's CPU time per
// request (client and replica together) beside the wall time.
//
//	go test -run '^$' -bench HTTPSynthetic100k -benchtime 6000x ./bench/load
func BenchmarkHTTPSynthetic100k(b *testing.B) {
	f := newSynthetic100k(b)
	srv := httptest.NewServer(f.replica(b, serve.ReplicaOptions{}, f.m.Full()).Handler())
	defer srv.Close()
	cl := client.New(srv.URL, HTTPClient(1000))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= b.N; i = int(next.Add(1)) {
				if _, err := cl.Recommend(context.Background(), f.reqs[i%len(f.reqs)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/req")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScoringInt8Synthetic100k ranks the serving benchmark's queries
// (100,000 items, dim 64, top 100) with an exact replica and an int8 one
// in turn, and reports each one's time per request and the share of the
// exact top 100 the int8 replica answers (its overlap on this data).
func BenchmarkScoringInt8Synthetic100k(b *testing.B) {
	f := newSynthetic100k(b)
	full, reqs := f.m.Full(), f.reqs
	exact := f.replica(b, serve.ReplicaOptions{Scoring: serve.ScoringExact}, full)
	int8 := f.replica(b, serve.ReplicaOptions{Scoring: serve.ScoringInt8}, full)
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
	f := newSynthetic100k(b)
	noLists := *f.m.Capture
	noLists.Memory = nil
	with := f.replica(b, serve.ReplicaOptions{}, f.m.Full())
	without := f.replica(b, serve.ReplicaOptions{}, snapshot.UpdateOf(nil, &noLists))
	reqs := f.reqs
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
