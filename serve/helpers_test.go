package serve

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// testItem is an item of a hand-made model whose logit is score (for
// every context: the context vector is the task shift (1, 0)).
type testItem struct {
	id, typ, title string
	cats           []string
	score          float32
}

// testCapture builds a capture of version v in which each item's vector
// is (score, 0 | bias 0) and every task's context vector is (1, 0).
func testCapture(t testing.TB, v int64, items []testItem) *model.Capture {
	t.Helper()
	const dim = 2
	var f model.Featurizer
	c := &model.Capture{Config: model.ModelConfig{Dim: dim}, Version: v, Watermark: testEpoch.UnixMilli(),
		Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}}
	for _, name := range ingest.DefaultCanvases() {
		c.Tasks[name.Name] = model.TaskParams{Scale: []float32{1, 1}, Shift: []float32{1, 0}}
	}
	rows := map[uint64][]float32{}
	for _, it := range items {
		meta := stream.ItemMeta{Type: it.typ, Title: it.title, Categories: it.cats}
		c.Items = append(c.Items, model.Item{ID: it.id, Meta: meta})
		rows[f.Item(nil, "", it.id, meta)[0]] = []float32{it.score, 0, 0}
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

var testEpoch = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// testClock is a settable clock; step, when set, advances it on every
// reading.
type testClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// newTestReplica returns a replica over the default canvases with opts
// (Registry and Now filled in) serving items as version 1.
func newTestReplica(t testing.TB, opts ReplicaOptions, items []testItem) (*Replica, *testClock) {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{now: testEpoch.Add(time.Second)}
	opts.Registry, opts.Now = reg, clock.Now
	r, err := NewReplica(opts)
	if err != nil {
		t.Fatal(err)
	}
	if items != nil {
		if err := r.Apply(snapshot.UpdateOf(nil, testCapture(t, 1, items))); err != nil {
			t.Fatal(err)
		}
	}
	return r, clock
}

// ids returns the ids of items, in order.
func ids(items []Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// catalog returns n video items m-0..m-(n-1), m-i scoring i/n (so the
// best is the last).
func catalog(n int) []testItem {
	out := make([]testItem, n)
	for i := range out {
		out[i] = testItem{id: "m-" + strconv.Itoa(i), typ: "video", title: "t" + strconv.Itoa(i), score: float32(i) / float32(n)}
	}
	return out
}
