package online

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// ownHistoryWorld is a tagging log: each of 40 queries has an owner who
// engages with its 30 items one by one (never twice, as a user tags a
// movie once), and other users later engage with items the owner did.
// Each example gets uniform negatives and one drawn from the user's own
// earlier items in the query, as a sampler over seen items draws them.
func ownHistoryWorld(reg *ingest.Registry) []stream.Example {
	rng := rand.New(rand.NewPCG(5, 5))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var exs []stream.Example
	at := 0
	example := func(user, query, item string, own []string) {
		at++
		ev := &ingest.Event{Canvas: "search", Time: start.Add(time.Duration(at) * time.Second),
			Context: map[string]string{"user_id": user, "query": query}}
		ex := reg.Normalize(ev)
		ex.ItemID, ex.Label, ex.Weight, ex.Item = item, 1, 1, stream.ItemMeta{Type: "video"}
		exs = append(exs, ex)
		negs := []string{fmt.Sprintf("it-%d", rng.IntN(1200)), fmt.Sprintf("it-%d", rng.IntN(1200))}
		if len(own) > 0 {
			negs = append(negs, own[rng.IntN(len(own))])
		}
		for _, n := range negs {
			neg := ex
			neg.ItemID, neg.Label, neg.SampleProb = n, 0, 1.0/1200
			exs = append(exs, neg)
		}
	}
	for q := range 40 {
		query, owner := fmt.Sprintf("tag %d", q), fmt.Sprintf("owner-%d", q)
		var own []string
		for j := range 30 {
			item := fmt.Sprintf("it-%d", 30*q+j)
			example(owner, query, item, own)
			own = append(own, item)
		}
		for range 8 {
			example(fmt.Sprintf("u-%d", rng.IntN(1000)), query, own[rng.IntN(len(own))], nil)
		}
	}
	return exs
}

// A count read for an example leaves out its own user's latest
// engagements: a user's own history (never engaged again, and excluded at
// serving) drawn as negatives must not teach the memory that a list
// predicts against its items, when other users' engagements say it
// predicts for them. Without leave-user-out the weight learns negative.
func TestMemoryLeavesTheUsersOwnHistoryOut(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	tr := openTest(t, TrainerOptions{})
	defer tr.Close()
	applyAll(t, tr, ownHistoryWorld(reg))
	if w := capture(t, tr).Tasks["search"].Memory["query"]; !(w > 0) {
		t.Errorf("memory weight of (search, query) %g, want > 0: other users' engagements predict the list's items", w)
	}
}

// The count of an item leaves out the latest streak of engagements of the
// reading user, and only theirs.
func TestMemoryCountLeavesUserOut(t *testing.T) {
	m := newMemory(model.DefaultMemoryConfig(), 0)
	const key, alice, bob = 1, 11, 22
	x := itemHash("x")
	m.add(key, "x", x, alice, 1, 1000, 1000)
	m.add(key, "x", x, alice, 2, 1001, 1001)
	for _, c := range []struct {
		user uint64
		want float64
	}{{alice, 0}, {bob, 3}, {0, 3}} {
		if got := m.count(key, "x", x, c.user, 1002, 1002); got != c.want {
			t.Errorf("after alice x3: count for %d = %g, want %g", c.user, got, c.want)
		}
	}
	m.add(key, "x", x, bob, 1, 1003, 1003)
	for _, c := range []struct {
		user uint64
		want float64
	}{{alice, 4}, {bob, 3}} {
		if got := m.count(key, "x", x, c.user, 1004, 1004); got != c.want {
			t.Errorf("after bob x1: count for %d = %g, want %g", c.user, got, c.want)
		}
	}
}

// A list finds every item it holds and no other, through inserts and
// removals, even when items share a hash: hashes are drawn from 3 values
// here, so most items collide, and a map is the reference.
func TestMemListFindsEveryItemWhateverItsHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	l, ref := newMemList(0), map[string]float64{}
	hash := func(item string) uint64 { return itemHash(item) % 3 }
	for step := range 5000 {
		item := fmt.Sprintf("i%d", rng.IntN(40))
		i := l.find(item, hash(item))
		_, in := ref[item]
		if (i >= 0) != in {
			t.Fatalf("step %d: find(%s) = %d, but the list holds it: %v", step, item, i, in)
		}
		switch {
		case in && rng.IntN(2) == 0:
			l.remove(i)
			delete(ref, item)
		case in:
			l.entries[i].n++
			ref[item]++
		default:
			l.insert(item, hash(item), memCount{n: 1})
			ref[item] = 1
		}
	}
	if len(l.entries) != len(ref) {
		t.Fatalf("%d entries, want %d", len(l.entries), len(ref))
	}
	for item, n := range ref {
		if i := l.find(item, hash(item)); i < 0 || l.entries[i].n != n {
			t.Errorf("%s: found at %d, want count %g", item, i, n)
		}
	}
}

// max_contexts bounds the lists the memory holds, shared among its lanes
// (30 lists: 8, 8, 7 and 7): with many more contexts than that, each lane
// holds up to its share, and fills it.
func TestMemoryHoldsAtMostMaxContextsLists(t *testing.T) {
	cfg := model.DefaultModelConfig()
	cfg.Memory.ItemsPerContext, cfg.Memory.MaxContexts = 3, 30
	tr := openTest(t, TrainerOptions{Model: cfg})
	defer tr.Close()
	var peak [memLanes]int
	for _, ex := range synthExamples(t, 1500) {
		applyAll(t, tr, []stream.Example{ex})
		for l, m := range tr.mem {
			peak[l] = max(peak[l], len(m.lists))
		}
	}
	if want := [memLanes]int{8, 8, 7, 7}; peak != want {
		t.Errorf("the memory's lanes held up to %v lists, want %v (max_contexts %d)", peak, want, cfg.Memory.MaxContexts)
	}
}

// The memory's per-item store records survive restarts exactly: lists
// bounded to 3 items (evictions), 30 contexts (drops and re-creations)
// and a one-second half-life (rebases), the trainer closed and reopened
// every 400 examples, end with the model of a trainer that never stopped.
func TestMemoryRecordsSurviveRestarts(t *testing.T) {
	cfg := model.DefaultModelConfig()
	cfg.Memory.ItemsPerContext, cfg.Memory.MaxContexts, cfg.Memory.HalfLife = 3, 30, time.Second
	exs := synthExamples(t, 800)
	clean := openTest(t, TrainerOptions{Model: cfg})
	applyAll(t, clean, exs)
	want := capture(t, clean)
	clean.Close()
	dir := t.TempDir()
	for start := 0; start < len(exs); start += 400 {
		tr := openTest(t, TrainerOptions{Model: cfg, Dir: dir})
		applyAll(t, tr, exs[start:min(start+400, len(exs))])
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	last := openTest(t, TrainerOptions{Model: cfg, Dir: dir})
	defer last.Close()
	got := capture(t, last)
	if len(got.Memory) == 0 {
		t.Fatal("no memory lists: the test exercises nothing")
	}
	sameModel(t, want, got)
}
