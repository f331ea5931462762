// Package growth measures how what the system holds grows with users and
// items: for each (users, items) point it trains a fresh trainer (Pebble
// on disk) on a synthetic log in which every user and every item occurs,
// then reports the trainer's heap, the Pebble store's size, the full and
// delta snapshot sizes, a replica's heap, cold start and delta apply
// times, and the time of one recommend over the whole catalog.
//
// It is a benchmark, never a test: nothing here asserts a size or a time.
package growth

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
)

// Point is one size to measure.
type Point struct{ Users, Items int }

// Options configures a run.
type Options struct {
	Points []Point
	Dir    string // parent of each point's Pebble store
	// PerUser is how many engagements each user has (default 2); each
	// comes with one sampled negative.
	PerUser int
	Model   model.ModelConfig
	// Spill gives the replica a serve.rows_dir (a folder under Dir): its
	// base rows live in files read with pread instead of its heap.
	Spill bool
	// Scoring is the replica's serve.scoring ("" is its default).
	Scoring string
	Logf    func(format string, args ...any)
}

// Figures are what one point measured.
type Figures struct {
	Users, Items, Examples, Rows int
	Train                        time.Duration
	// TrainerHeap is the Go heap the trainer holds once it has learned
	// the log and taken a capture (its copy for the next one included).
	TrainerHeap, Pebble int64
	// FullBytes is the compressed float32 full snapshot; DeltaBytes and
	// DeltaRows the delta after a further 1% of the log.
	FullBytes, DeltaBytes, DeltaRows int
	// ColdStart is a new replica applying the full snapshot (decoding
	// excluded); ApplyDelta the delta on it; ReplicaHeap the heap the
	// replica holds; Query the median of 20 recommend calls.
	ColdStart, ApplyDelta, Query time.Duration
	ReplicaHeap                  int64
}

// Run measures every point in order.
func Run(ctx context.Context, o Options) ([]Figures, error) {
	if o.PerUser <= 0 {
		o.PerUser = 2
	}
	if o.Model.Dim == 0 {
		o.Model = model.DefaultModelConfig()
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		return nil, err
	}
	var out []Figures
	for i, p := range o.Points {
		if p.Users <= 0 || p.Items <= 0 {
			return nil, fmt.Errorf("point %d: users and items must be positive, got %d x %d", i, p.Users, p.Items)
		}
		f, err := measure(ctx, o, reg, p, filepath.Join(o.Dir, fmt.Sprintf("point-%d", i)))
		if err != nil {
			return nil, fmt.Errorf("%d users x %d items: %w", p.Users, p.Items, err)
		}
		if o.Logf != nil {
			o.Logf("growth: %d users x %d items: %d rows, trainer heap %d MiB, replica heap %d MiB", p.Users, p.Items, f.Rows, f.TrainerHeap>>20, f.ReplicaHeap>>20)
		}
		out = append(out, f)
	}
	return out, nil
}

// measure trains on one point's log and measures it: the trainer first,
// closed and unreachable before the replica is built and measured.
func measure(ctx context.Context, o Options, reg *ingest.Registry, p Point, dir string) (Figures, error) {
	f := Figures{Users: p.Users, Items: p.Items}
	base := heap()
	full, delta, err := train(o, reg, p, dir, base, &f)
	if err != nil {
		return f, err
	}
	if f.Pebble, err = dirSize(dir); err != nil { // before the replica's rows files
		return f, err
	}
	cold := snapshot.UpdateOf(nil, full)
	full = nil
	rowsDir := ""
	if o.Spill {
		rowsDir = filepath.Join(dir, "replica-rows")
	}
	r, err := replicaOf(serve.ReplicaOptions{Registry: reg, RowsDir: rowsDir, Scoring: o.Scoring}, cold, delta, &f)
	if err != nil {
		return f, err
	}
	cold, delta = nil, nil
	f.ReplicaHeap = heap() - base
	f.Query, err = queryTime(ctx, r)
	runtime.KeepAlive(r)
	return f, err
}

// train learns the point's log, measures the trainer's heap and the full
// snapshot, learns 1% more and returns the full capture and the delta.
func train(o Options, reg *ingest.Registry, p Point, dir string, base int64, f *Figures) (*model.Capture, *snapshot.Update, error) {
	tr, err := online.OpenTrainer(online.TrainerOptions{Dir: dir, Model: o.Model, CommitInterval: time.Hour})
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	l := newSynthLog(reg, p, o.PerUser)
	start := time.Now()
	if f.Examples, err = l.apply(tr, l.size()); err != nil {
		return nil, nil, err
	}
	f.Train = time.Since(start)
	full, err := tr.Capture()
	if err != nil {
		return nil, nil, err
	}
	f.Rows, f.TrainerHeap = len(full.IDs), heap()-base
	if _, f.FullBytes, err = snapshot.Encoded(snapshot.Diff(nil, full), full.Config, snapshot.EncodingFloat32); err != nil {
		return nil, nil, err
	}
	more, err := l.apply(tr, max(1, l.size()/100))
	if err != nil {
		return nil, nil, err
	}
	f.Examples += more
	next, err := tr.Capture()
	if err != nil {
		return nil, nil, err
	}
	delta := snapshot.UpdateOf(full, next)
	f.DeltaRows = len(delta.Delta.IDs)
	if _, f.DeltaBytes, err = snapshot.Encoded(delta.Delta, next.Config, snapshot.EncodingFloat32); err != nil {
		return nil, nil, err
	}
	return full, delta, tr.Close()
}

// replicaOf builds a replica from a full snapshot, applies a delta and
// times both.
func replicaOf(ro serve.ReplicaOptions, full, delta *snapshot.Update, f *Figures) (*serve.Replica, error) {
	r, err := serve.NewReplica(ro)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := r.Apply(full); err != nil {
		return nil, fmt.Errorf("cannot apply the full snapshot: %w", err)
	}
	f.ColdStart = time.Since(start)
	start = time.Now()
	if err := r.Apply(delta); err != nil {
		return nil, fmt.Errorf("cannot apply the delta: %w", err)
	}
	f.ApplyDelta = time.Since(start)
	return r, nil
}

// queryTime is the median of 20 recommend calls for known users.
func queryTime(ctx context.Context, r *serve.Replica) (time.Duration, error) {
	var ts []time.Duration
	for i := range 20 {
		req := &serve.Request{UseCase: "notifications", K: 10, Context: map[string]string{"user_id": fmt.Sprint("u-", i), "country": "US"}}
		start := time.Now()
		if _, aerr := r.Recommend(ctx, req); aerr != nil {
			return 0, fmt.Errorf("recommend: %s", aerr.Message)
		}
		ts = append(ts, time.Since(start))
	}
	return bench.Percentile(ts, 0.5), nil
}

// synthLog is the synthetic log of a point: engagements of every user in turn
// (PerUser rounds), with items drawn from a Zipf law over the catalog,
// except that the first round walks the whole catalog so every item
// occurs; each engagement comes with one negative drawn uniformly.
type synthLog struct {
	reg     *ingest.Registry
	p       Point
	perUser int
	rng     *rand.Rand
	zipf    *rand.Zipf
	n       int // engagements produced
	t0      time.Time
}

func newSynthLog(reg *ingest.Registry, p Point, perUser int) *synthLog {
	rng := rand.New(rand.NewPCG(1, 1))
	return &synthLog{reg: reg, p: p, perUser: perUser, rng: rng, zipf: rand.NewZipf(rng, 1.1, 1, uint64(p.Items-1)),
		t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// size is the number of engagements of the whole log.
func (l *synthLog) size() int { return max(l.p.Users*l.perUser, l.p.Items) }

// apply feeds the next n engagements (and their negatives) to tr and
// returns how many examples that was.
func (l *synthLog) apply(tr *online.Trainer, n int) (int, error) {
	examples := 0
	for range n {
		item := int(l.zipf.Uint64())
		if l.n < l.p.Items {
			item = l.n
		}
		user := l.n % l.p.Users
		for i, it := range []int{item, l.rng.IntN(l.p.Items)} {
			ev := ingest.Event{Canvas: "notifications", Action: "click", ItemID: fmt.Sprint("m-", it), Time: l.t0.Add(time.Duration(l.n) * time.Millisecond),
				Context: map[string]string{"user_id": fmt.Sprint("u-", user), "country": "US"}}
			ex := l.reg.Normalize(&ev)
			ex.Label, ex.Weight = float32(1-i), 1
			if err := tr.Apply(&ex); err != nil {
				return examples, err
			}
			examples++
		}
		l.n++
	}
	return examples, nil
}

// heap is the Go heap in use after a collection.
func heap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// dirSize is the bytes of the files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}

// Table is the figures as a report table.
func Table(figs []Figures) bench.Table {
	t := bench.Table{Title: "Growth with users and items",
		Header: []string{"users", "items", "examples", "rows", "train", "trainer heap", "Pebble", "full snapshot", "delta (1% more traffic)",
			"replica heap", "cold start (apply)", "delta apply", "recommend (median)"}}
	for _, f := range figs {
		t.Rows = append(t.Rows, []string{fmt.Sprint(f.Users), fmt.Sprint(f.Items), fmt.Sprint(f.Examples), fmt.Sprint(f.Rows),
			f.Train.Round(time.Millisecond).String(), mib(f.TrainerHeap), mib(f.Pebble), mib(int64(f.FullBytes)),
			fmt.Sprintf("%s (%d rows)", mib(int64(f.DeltaBytes)), f.DeltaRows), mib(f.ReplicaHeap),
			f.ColdStart.Round(time.Millisecond).String(), f.ApplyDelta.Round(time.Microsecond).String(), f.Query.Round(time.Microsecond).String()})
	}
	return t
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Plot draws heap and snapshot sizes against users, for the points that
// share the smallest catalog.
func Plot(figs []Figures) []byte {
	var users []Figures
	if len(figs) > 0 {
		least := slices.MinFunc(figs, func(a, b Figures) int { return a.Items - b.Items }).Items
		for _, f := range figs {
			if f.Items == least {
				users = append(users, f)
			}
		}
	}
	series := []bench.Series{{Name: "trainer heap"}, {Name: "replica heap"}, {Name: "full snapshot"}, {Name: "Pebble"}}
	for _, f := range users {
		x := float64(f.Users)
		for i, v := range []int64{f.TrainerHeap, f.ReplicaHeap, int64(f.FullBytes), f.Pebble} {
			series[i].X, series[i].Y = append(series[i].X, x), append(series[i].Y, float64(v)/(1<<20))
		}
	}
	return bench.LinePlot("Memory and storage against users", "users", "MiB", series)
}
