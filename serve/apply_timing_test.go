package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// bigModel returns a capture shaped like a busy model: rows random rows of
// dim 32 (plus the rows of 2,000 items' features) and a copy of it in
// which a third of the rows changed.
func bigModel(rows int) (*model.Capture, *model.Capture) {
	rng := rand.New(rand.NewPCG(1, 2))
	cfg := model.DefaultModelConfig()
	c := &model.Capture{Config: cfg, Version: 1, Tasks: map[string]model.TaskParams{"notifications": *model.NewTaskParams(cfg.Dim)}}
	var feat model.Featurizer
	ids := map[uint64]bool{}
	for i := 0; i < 2000; i++ {
		meta := stream.ItemMeta{Type: "video", Title: fmt.Sprintf("title %d word%d", i, i%50), Categories: []string{fmt.Sprint("g", i%8)}}
		c.Items = append(c.Items, model.Item{ID: fmt.Sprint("m-", i), Meta: meta})
		for _, id := range feat.Item(nil, "", fmt.Sprint("m-", i), meta) {
			ids[id] = true
		}
	}
	for len(ids) < rows {
		ids[rng.Uint64()] = true
	}
	c.IDs = slices.Sorted(func(yield func(uint64) bool) {
		for id := range ids {
			if !yield(id) {
				return
			}
		}
	})
	slices.SortFunc(c.Items, func(a, b model.Item) int { return cmpStr(a.ID, b.ID) })
	for range c.IDs {
		for j := 0; j <= cfg.Dim; j++ {
			c.Weights = append(c.Weights, rng.Float32()*0.2-0.1)
		}
	}
	next := *c
	next.Version = 2
	next.Weights = slices.Clone(c.Weights)
	for i := range c.IDs {
		if rng.IntN(3) == 0 {
			next.Weights[i*(cfg.Dim+1)] += 0.01
		}
	}
	return c, &next
}

func cmpStr(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// BenchmarkApplyDelta measures building the next version from a delta
// touching a third of 50,000 rows, against building it from a full
// snapshot in the same run.
func BenchmarkApplyDelta(b *testing.B) {
	c1, c2 := bigModel(50_000)
	full, delta := snapshot.UpdateOf(nil, c1), snapshot.UpdateOf(c1, c2)
	base := NewModel(full)
	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			NewModel(snapshot.UpdateOf(nil, c2))
		}
	})
	b.Run("delta", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			base.next(delta)
		}
	})
}

// BenchmarkRecommendDuringApply measures request latency on one replica
// while another goroutine applies deltas (a third of 50,000 rows each) to
// it back to back, against the same requests with no apply, in the same
// run; it reports p99 of each and their ratio.
func BenchmarkRecommendDuringApply(b *testing.B) {
	c1, c2 := bigModel(50_000)
	full, delta, back := snapshot.UpdateOf(nil, c1), snapshot.UpdateOf(c1, c2), snapshot.UpdateOf(c2, c1)
	reg, _ := ingest.NewRegistry(ingest.DefaultCanvases())
	r, err := NewReplica(ReplicaOptions{Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := r.Apply(full); err != nil {
		b.Fatal(err)
	}
	measure := func(apply bool) time.Duration {
		var stop atomic.Bool
		done := make(chan int)
		go func() {
			n := 0
			for apply && !stop.Load() {
				if err := r.Apply(delta); err != nil {
					panic(err)
				}
				if err := r.Apply(back); err != nil {
					panic(err)
				}
				n++
			}
			done <- n
		}()
		var lat []time.Duration
		for i := 0; i < 3000; i++ {
			req := &Request{UseCase: "notifications", K: 10, Context: map[string]string{"user_id": fmt.Sprint("u-", i)}}
			start := time.Now()
			if _, aerr := r.Recommend(context.Background(), req); aerr != nil {
				b.Fatal(aerr)
			}
			lat = append(lat, time.Since(start))
		}
		stop.Store(true)
		if n := <-done; apply && n == 0 {
			b.Fatal("no apply ran during the requests")
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	var idle, busy time.Duration
	for i := 0; i < b.N; i++ {
		idle, busy = measure(false), measure(true)
	}
	b.ReportMetric(float64(idle.Microseconds()), "idle-p99-us")
	b.ReportMetric(float64(busy.Microseconds()), "applying-p99-us")
	b.ReportMetric(float64(busy)/float64(idle), "p99-ratio")
}
