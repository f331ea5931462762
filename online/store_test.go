package online

import (
	"maps"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

func synthExamples(t *testing.T, requests int) []stream.Example {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	return synth.NewWorld(synth.Options{Seed: 5}).Examples(reg, requests)
}

func openTest(t *testing.T, opts TrainerOptions) *Trainer {
	t.Helper()
	if opts.Model.Dim == 0 {
		opts.Model = model.DefaultModelConfig()
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	tr, err := OpenTrainer(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func applyAll(t *testing.T, tr *Trainer, exs []stream.Example) {
	t.Helper()
	for i := range exs {
		if err := tr.Apply(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
}

func capture(t *testing.T, tr *Trainer) *model.Capture {
	t.Helper()
	c, err := tr.Capture()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sameModel fails unless a and b hold bit-identical parameters.
func sameModel(t *testing.T, a, b *model.Capture) {
	t.Helper()
	if !slices.Equal(a.IDs, b.IDs) {
		t.Fatalf("row ids differ: %d rows vs %d rows", len(a.IDs), len(b.IDs))
	}
	for i := range a.Weights {
		if math.Float32bits(a.Weights[i]) != math.Float32bits(b.Weights[i]) {
			t.Fatalf("weight %d of row %x differs: %v vs %v", i%(a.Config.Dim+1), a.IDs[i/(a.Config.Dim+1)], a.Weights[i], b.Weights[i])
		}
	}
	for name, ta := range a.Tasks {
		tb := b.Tasks[name]
		if ta.Bias != tb.Bias || !slices.Equal(ta.Scale, tb.Scale) || !slices.Equal(ta.Shift, tb.Shift) || !maps.Equal(ta.Memory, tb.Memory) {
			t.Fatalf("task %s adapter or memory weights differ: %v vs %v", name, ta.Memory, tb.Memory)
		}
	}
	if !reflect.DeepEqual(a.Memory, b.Memory) {
		t.Fatalf("memory lists differ: %d vs %d lists", len(a.Memory), len(b.Memory))
	}
	if a.Applied != b.Applied || a.Watermark != b.Watermark {
		t.Fatalf("applied/watermark %d/%d vs %d/%d", a.Applied, a.Watermark, b.Applied, b.Watermark)
	}
}

// A memory bound smaller than the model evicts rows to Pebble and pages
// them back on use: the model learned is bit-identical to an unbounded run.
func TestBoundedMemoryLearnsTheSameModel(t *testing.T) {
	skipUnderRace(t)
	exs := synthExamples(t, 6000)
	free := openTest(t, TrainerOptions{})
	defer free.Close()
	applyAll(t, free, exs)
	want := capture(t, free)

	set := metrics.NewSet()
	const bound = 400
	tight := openTest(t, TrainerOptions{MaxRows: bound, Metrics: set})
	defer tight.Close()
	for i := range exs {
		if err := tight.Apply(&exs[i]); err != nil {
			t.Fatal(err)
		}
		if n := tight.rows.len(); n > bound {
			t.Fatalf("example %d: %d rows in memory, bound %d", i, n, bound)
		}
	}
	if len(want.IDs) < 2*bound {
		t.Fatalf("the model has %d rows: too small to test a bound of %d", len(want.IDs), bound)
	}
	sameModel(t, want, capture(t, tight))
	evicted := set.GetOrCreateCounter("unirec_trainer_rows_evicted_total").Get()
	paged := set.GetOrCreateCounter("unirec_trainer_rows_paged_in_total").Get()
	if evicted == 0 || paged == 0 {
		t.Fatalf("evicted %d, paged in %d: the bound was not exercised", evicted, paged)
	}
	t.Logf("%d rows, bound %d: %d evictions, %d page-ins", len(want.IDs), bound, evicted, paged)
}

// A store reopened with a bound loads at most that many rows and pages in
// the rest: learning continues exactly as without a restart.
func TestBoundedRestartContinuesExactly(t *testing.T) {
	exs := synthExamples(t, 4000)
	half := len(exs) / 2
	once := openTest(t, TrainerOptions{})
	defer once.Close()
	applyAll(t, once, exs)

	dir := t.TempDir()
	first := openTest(t, TrainerOptions{Dir: dir})
	applyAll(t, first, exs[:half])
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := openTest(t, TrainerOptions{Dir: dir, MaxRows: 1000})
	defer second.Close()
	if n := second.rows.len(); n > 1000 {
		t.Fatalf("loaded %d rows, bound 1000", n)
	}
	applyAll(t, second, exs[half:])
	sameModel(t, capture(t, once), capture(t, second))
}

func ex(task, user, item string, at time.Time, label float32) stream.Example {
	return stream.Example{Task: task, ItemID: item, EventTime: at.UnixMilli(), Label: label, Weight: 1,
		Context: []stream.Field{{Name: "user_id", Value: user}}}
}

func hasRow(c *model.Capture, id uint64) bool {
	_, ok := slices.BinarySearch(c.IDs, id)
	return ok
}

// A feature gets a row only at its MinCount-th sighting; the sightings
// survive a restart (they are committed with the offsets) and are counted.
func TestAdmissionAfterMinCountSightings(t *testing.T) {
	dir := t.TempDir()
	set := metrics.NewSet()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := openTest(t, TrainerOptions{Dir: dir, MinCount: 3, Metrics: set})
	item := tr.feat.FeatureID("search", model.NamespaceItem, "m-rare")
	e := ex("search", "u-1", "m-rare", t0, 1)
	for sighting := 1; sighting <= 2; sighting++ {
		if err := tr.Apply(&e); err != nil {
			t.Fatal(err)
		}
		if hasRow(capture(t, tr), item) {
			t.Fatalf("row after %d sightings, MinCount 3", sighting)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = openTest(t, TrainerOptions{Dir: dir, MinCount: 3, Metrics: set})
	defer tr.Close()
	if err := tr.Apply(&e); err != nil {
		t.Fatal(err)
	}
	if !hasRow(capture(t, tr), item) {
		t.Fatal("no row after the third sighting (two before a restart)")
	}
	if got := set.GetOrCreateCounter("unirec_trainer_features_admitted_total").Get(); got == 0 {
		t.Fatal("admissions not counted")
	}
	if n := tr.rows.pending(); n != 0 {
		t.Fatalf("%d sightings counters left after every feature was admitted", n)
	}
}

// A row unused for the TTL in event time is expired: gone from the
// capture and from Pebble, counted, and a later use starts it afresh.
func TestExpiryAfterTTLOfEventTime(t *testing.T) {
	for _, bound := range []int{0, 1000} {
		dir := t.TempDir()
		set := metrics.NewSet()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		tr := openTest(t, TrainerOptions{Dir: dir, TTL: time.Hour, MaxRows: bound, Metrics: set})
		stale := tr.feat.FeatureID("search", model.NamespaceItem, "m-old")
		fresh := tr.feat.FeatureID("search", model.NamespaceItem, "m-new")
		old := ex("search", "u-1", "m-old", t0, 1)
		if err := tr.Apply(&old); err != nil {
			t.Fatal(err)
		}
		later := ex("search", "u-1", "m-new", t0.Add(2*time.Hour), 1)
		if err := tr.Apply(&later); err != nil {
			t.Fatal(err)
		}
		c := capture(t, tr)
		if hasRow(c, stale) || !hasRow(c, fresh) {
			t.Fatalf("bound %d: stale row present %v, fresh row present %v", bound, hasRow(c, stale), hasRow(c, fresh))
		}
		if set.GetOrCreateCounter("unirec_trainer_rows_expired_total").Get() == 0 {
			t.Fatalf("bound %d: expiry not counted", bound)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		tr = openTest(t, TrainerOptions{Dir: dir, TTL: time.Hour, MaxRows: bound})
		if hasRow(capture(t, tr), stale) {
			t.Fatalf("bound %d: expired row still in Pebble after a restart", bound)
		}
		tr.Close()
	}
}

// skipUnderRace skips a single-goroutine learning test in the race pass of
// `make test`: it has no concurrency to check and already ran without the
// race detector, at a tenth of the cost.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("single-goroutine learning test: run without -race")
	}
}

// An example whose row lookup fails part-way (here: its item row in
// Pebble is unreadable, after its context rows were created) leaves no
// trace in the store: the shutdown commit does not save its partial rows
// without its offset, so a restart would apply it exactly once.
func TestPartialExampleIsNeverCommitted(t *testing.T) {
	dir := t.TempDir()
	opts := TrainerOptions{Dir: dir, MaxRows: 256}
	tr := openTest(t, opts)
	exs := synthExamples(t, 50)
	for i := range exs[:20] {
		if err := tr.Apply(&exs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Commit(); err != nil {
		t.Fatal(err)
	}
	applied := tr.Applied()
	ex := stream.Example{Task: "search", ItemID: "m-unreadable", Label: 1, Weight: 1, EventTime: exs[19].EventTime,
		Context: []stream.Field{{Name: "user_id", Value: "u-never-seen"}}}
	itemRow := tr.feat.Item(nil, ex.Task, ex.ItemID, ex.Item)[0]
	other := tr.feat.Context(nil, ex.Task, []stream.Field{{Name: "user_id", Value: "u-other"}}, time.UnixMilli(ex.EventTime))
	var userRows []uint64 // the rows of the new user's features: no other example has them
	for _, id := range tr.feat.Context(nil, ex.Task, ex.Context, time.UnixMilli(ex.EventTime)) {
		if !slices.Contains(other, id) {
			userRows = append(userRows, id)
		}
	}
	if err := tr.store.db.Set(rowKey(itemRow), []byte("not a row"), nil); err != nil {
		t.Fatal(err)
	}
	if err := tr.Apply(&ex); err == nil {
		t.Fatal("applying an example with an unreadable row succeeded")
	}
	if err := tr.Commit(); err == nil {
		t.Fatal("a commit after a partial example succeeded")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStore(dir, tr.cfg.Dim, nil) // the unreadable row goes, so the store loads
	if err != nil {
		t.Fatal(err)
	}
	if err := st.db.Delete(rowKey(itemRow), nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	again := openTest(t, opts)
	defer again.Close()
	if again.Applied() != applied {
		t.Fatalf("applied %d after restart, committed %d", again.Applied(), applied)
	}
	for _, id := range userRows {
		if _, found, err := again.store.getRow(id, make([]float32, again.rows.stride)); found || err != nil {
			t.Fatalf("row %x of the failed example's context was saved (err %v)", id, err)
		}
	}
}

// Closing a trainer twice (a deferred Close after an explicit one) does
// nothing the second time: no commit on the closed store.
func TestCloseTwiceIsHarmless(t *testing.T) {
	tr := openTest(t, TrainerOptions{})
	applyAll(t, tr, synthExamples(t, 50))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
