package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// The scoring kernel against the scalar Go loop it replaced, on a
// 100,000 x 64 matrix; SetBytes makes -bench report the matrix bytes
// scored per second, to compare with the machine's memory bandwidth
// (`unirec bench latency` measures both in one run).

func benchMatrix(n, dim int) ([]float32, []float32) {
	rng := rand.New(rand.NewPCG(1, 2))
	mat := make([]float32, n*(dim+1))
	for i := range mat {
		mat[i] = rng.Float32()
	}
	cv := make([]float32, dim)
	for i := range cv {
		cv[i] = rng.Float32()
	}
	return mat, cv
}

func BenchmarkScoresScalarBaseline(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	out := make([]float32, 100000)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		for i := range out {
			out[i] = model.Logit(cv, 0, mat[i*65:(i+1)*65])
		}
	}
}

func BenchmarkScores(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	out := make([]float32, 100000)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		Scores(out, mat, cv)
	}
}

func BenchmarkRankTop100(b *testing.B) {
	mat, cv := benchMatrix(100000, 64)
	b.SetBytes(int64(len(mat) * 4))
	for b.Loop() {
		rankTop(&scoreSpec{mat: mat, cv: cv, k: 100, shards: 1, allow: func(int) bool { return true }})
	}
}

// randomCapture is a capture of n items with random vectors of dim.
func randomCapture(n, dim int) *model.Capture {
	rng := rand.New(rand.NewPCG(5, 6))
	var f model.Featurizer
	c := &model.Capture{Config: model.ModelConfig{Dim: dim}, Version: 1, Tasks: map[string]model.TaskParams{}}
	rows := map[uint64][]float32{}
	for i := range n {
		id := "m-" + strconv.Itoa(i)
		c.Items = append(c.Items, model.Item{ID: id})
		row := make([]float32, dim+1)
		for j := range row {
			row[j] = float32(rng.NormFloat64())
		}
		rows[f.Item(nil, "", id, stream.ItemMeta{})[0]] = row
	}
	for id := range rows {
		c.IDs = append(c.IDs, id)
	}
	slices.Sort(c.IDs)
	for _, id := range c.IDs {
		c.Weights = append(c.Weights, rows[id]...)
	}
	return c
}

// BenchmarkRecommendConcurrent is whole requests (top 100 of a
// 100,000 x 64 catalog) from 8 goroutines per core, with parallelism 1
// (each request scans on one core) and 2 (every request uses both),
// each request alone (batch_queries=1) or in batched passes, exact or
// int8.
func BenchmarkRecommendConcurrent(b *testing.B) {
	c := randomCapture(100000, 64)
	for _, sc := range []struct {
		p, batch int
		scoring  string
	}{{1, 1, ScoringExact}, {1, 8, ScoringExact}, {1, 8, ScoringInt8}, {2, 1, ScoringExact}, {2, 8, ScoringExact}} {
		p := sc.p
		b.Run(fmt.Sprintf("parallelism=%d/batch_queries=%d/%s", p, sc.batch, sc.scoring), func(b *testing.B) {
			r, _ := newTestReplica(b, ReplicaOptions{UseCases: []UseCase{{Name: "notifications", Environment: Environment{Parallelism: p}}},
				Load: LoadOptions{BatchQueries: sc.batch}, Scoring: sc.scoring}, nil)
			if err := r.Apply(snapshot.UpdateOf(nil, c)); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := "u-" + strconv.Itoa(int(next.Add(1)%1000))
					if _, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user(u), K: 100}); aerr != nil {
						b.Fatal(aerr)
					}
				}
			})
		})
	}
}

// BenchmarkRankBatched ranks top 100 of a 100,000 x 64 matrix for B
// queries, alone one after the other (the baseline: B passes) and in one
// batched pass, interleaved in every iteration so both see the same
// machine; exact and int8. It reports the wall time per query of each
// and the ratios of wall and process CPU time.
func BenchmarkRankBatched(b *testing.B) {
	mat, _ := benchMatrix(100000, 64)
	qm := quantize(mat, 64)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, scoring := range []string{ScoringExact, ScoringInt8} {
		for _, q := range []int{1, 4, 8, 16} {
			b.Run(fmt.Sprintf("%s/queries=%d", scoring, q), func(b *testing.B) {
				specs := make([]*scoreSpec, q)
				for j := range specs {
					cv := make([]float32, 64)
					for i := range cv {
						cv[i] = rng.Float32()*2 - 1
					}
					specs[j] = &scoreSpec{mat: mat, cv: cv, k: 100, shards: 1}
					if scoring == ScoringInt8 {
						specs[j].quant = qm
					}
				}
				exact := make([]*scoreSpec, q)
				for j, s := range specs {
					e := *s
					e.quant = nil
					exact[j] = &e
				}
				var alone, batched, aloneCPU, batchedCPU time.Duration
				for b.Loop() {
					start, cpu0 := time.Now(), processCPU()
					for _, s := range exact {
						rankTop(s)
					}
					mid, cpu1 := time.Now(), processCPU()
					rankBatch(specs)
					alone, batched = alone+mid.Sub(start), batched+time.Since(mid)
					aloneCPU, batchedCPU = aloneCPU+cpu1-cpu0, batchedCPU+processCPU()-cpu1
				}
				per := func(d time.Duration) float64 { return float64(d) / float64(b.N*q) }
				b.ReportMetric(per(alone)/1e3, "exact-alone-us/query")
				b.ReportMetric(per(batched)/1e3, "pass-us/query")
				b.ReportMetric(per(alone)/per(batched), "speedup")
				b.ReportMetric(per(aloneCPU)/per(batchedCPU), "cpu-speedup")
			})
		}
	}
}

// BenchmarkBurstBatchedVsAlone answers bursts of 16 concurrent requests
// (top 100 of 100,000 x 64) with a replica scoring each alone
// (batch_queries 1, the baseline), one batching them (8 per pass) and one
// batching int8 passes, in turn in every iteration so all three see the
// same machine; it reports each one's wall time and process CPU time per
// request and the wall-time ratios to the baseline.
func BenchmarkBurstBatchedVsAlone(b *testing.B) {
	c := randomCapture(100000, 64)
	replica := func(batch int, scoring string) *Replica {
		r, _ := newTestReplica(b, ReplicaOptions{Load: LoadOptions{BatchQueries: batch}, Scoring: scoring}, nil)
		if err := r.Apply(snapshot.UpdateOf(nil, c)); err != nil {
			b.Fatal(err)
		}
		return r
	}
	rs := []*Replica{replica(1, ScoringExact), replica(8, ScoringExact), replica(8, ScoringInt8)}
	const burst = 16
	took, cpu := make([]time.Duration, len(rs)), make([]time.Duration, len(rs))
	next := 0
	for b.Loop() {
		for i, r := range rs {
			start, cpu0 := time.Now(), processCPU()
			var wg sync.WaitGroup
			for j := range burst {
				u := "u-" + strconv.Itoa((next+j)%1000)
				wg.Go(func() {
					if _, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user(u), K: 100}); aerr != nil {
						b.Error(aerr)
					}
				})
			}
			wg.Wait()
			took[i] += time.Since(start)
			cpu[i] += processCPU() - cpu0
		}
		next += burst
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N*burst) }
	b.ReportMetric(per(took[0]), "alone-us/req")
	b.ReportMetric(per(took[1]), "batched-us/req")
	b.ReportMetric(per(took[2]), "int8-batched-us/req")
	b.ReportMetric(float64(took[0])/float64(took[1]), "batched-speedup")
	b.ReportMetric(float64(took[0])/float64(took[2]), "int8-batched-speedup")
	b.ReportMetric(per(cpu[0]), "alone-cpu-us/req")
	b.ReportMetric(per(cpu[1]), "batched-cpu-us/req")
	b.ReportMetric(per(cpu[2]), "int8-batched-cpu-us/req")
	b.ReportMetric(float64(rs[1].scorer.jobsDone.Get())/float64(max(rs[1].scorer.passesDone.Get(), 1)), "queries/pass")
}

// processCPU is the CPU time (user and system) this process has used: on
// a machine shared with other work it measures what a request costs,
// where wall time measures the share of the cores it was given.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
