package online

import (
	"cmp"
	"maps"
	"math"
	"slices"

	"github.com/unirec/unirec/online/model"
)

// The trainer's memory: per context value, a bounded list of the items
// engaged with in it (model/memory.go says why and how it scores). Every
// change is a function of the examples in log order, so a restarted or
// standby trainer holds the same lists: an example reads the counts before
// its own positive is added (prequential), lists are bounded by
// space-saving replacement, and contexts beyond max_contexts are dropped
// least recently updated first, ties by key.

// memList is one context's list: counts stored relative to ref.
type memList struct {
	counts map[string]memCount
	ref    int64 // event time (ms) the stored counts are relative to
	last   int64 // event time of the last update (expiry, eviction)
}

// memCount is an item's space-saving count: n counts the engagements
// since the item entered plus err, the count it inherited from the item it
// replaced. Eviction goes by n (a heavy item is never evicted by lighter
// ones); the feature is the lower bound n - err, so an item that just
// replaced another is not scored as if it had the other's engagements.
// user is the user of the latest engagements and own their count: an
// example of that user reads the count without them (leave-user-out), as
// serving never ranks a user's own engaged items (they are excluded), so
// a user's own history must not teach the weights what a list is worth.
type memCount struct {
	n, err, own float64
	user        uint64
}

// memory holds every list and which keys changed (or were dropped) since
// the last commit and since the last capture.
type memory struct {
	cfg   model.MemoryConfig
	ttl   int64 // ms; 0 never expires
	lists map[uint64]*memList
	dirty map[uint64]struct{} // changed or deleted since the last commit
	// items holds, per dirty key, the items set or evicted since the last
	// commit (the store writes a record per item); cleared the keys whose
	// list was dropped since (their records are deleted first).
	items   map[uint64]map[string]struct{}
	cleared map[uint64]struct{}
	changed map[uint64]struct{} // changed or deleted since the last capture
	// exported holds the lists as the last capture exported them: a
	// capture re-exports only the changed ones, and an unchanged list
	// keeps its backing array, so a delta finds it unchanged at once.
	exported map[uint64]model.MemoryList
}

func newMemory(cfg model.MemoryConfig, ttl int64) *memory {
	return &memory{cfg: cfg, ttl: ttl, lists: map[uint64]*memList{}, dirty: map[uint64]struct{}{},
		items: map[uint64]map[string]struct{}{}, cleared: map[uint64]struct{}{},
		changed: map[uint64]struct{}{}, exported: map[uint64]model.MemoryList{}}
}

// list returns the live list of key at watermark, nil when it has none;
// an expired list is dropped.
func (m *memory) list(key uint64, watermark int64) *memList {
	l := m.lists[key]
	if l != nil && expired(m.ttl, l.last, watermark) {
		m.drop(key)
		return nil
	}
	return l
}

// count is the decayed count of item in key's list at time at, without
// the latest engagements of user (0: none known).
func (m *memory) count(key uint64, item string, user uint64, at, watermark int64) float64 {
	l := m.list(key, watermark)
	if l == nil {
		return 0
	}
	c, ok := l.counts[item]
	if !ok {
		return 0
	}
	n := c.n - c.err
	if user != 0 && c.user == user {
		n -= c.own
	}
	return max(0, n) * model.Decay(l.ref, at, m.cfg.HalfLife)
}

// add counts an engagement of weight w by user with item in key's list at
// time at.
func (m *memory) add(key uint64, item string, user uint64, w float64, at, watermark int64) {
	l := m.list(key, watermark)
	if l == nil {
		m.makeRoom()
		l = &memList{counts: map[string]memCount{}, ref: at}
		m.lists[key] = l
	}
	m.rebase(key, l, at)
	c, ok := l.counts[item]
	if !ok && len(l.counts) >= m.cfg.ItemsPerContext {
		low := smallest(l.counts)
		c = memCount{n: l.counts[low].n, err: l.counts[low].n}
		delete(l.counts, low)
		m.markItem(key, low)
	}
	v := w / model.Decay(l.ref, at, m.cfg.HalfLife)
	if c.user != user {
		c.user, c.own = user, 0
	}
	c.n += v
	c.own += v
	l.counts[item] = c
	l.last = max(l.last, at)
	m.markItem(key, item)
}

// rebase keeps stored values finite under a half-life: once at is 64
// half-lives past ref, every count is brought to at.
func (m *memory) rebase(key uint64, l *memList, at int64) {
	h := m.cfg.HalfLife.Milliseconds()
	if h <= 0 || at-l.ref < 64*h {
		return
	}
	f := model.Decay(l.ref, at, m.cfg.HalfLife)
	for item, c := range l.counts {
		l.counts[item] = memCount{n: c.n * f, err: c.err * f, own: c.own * f, user: c.user}
	}
	l.ref = at
	m.cleared[key] = struct{}{} // every item changed: rewrite the list
	for item := range l.counts {
		m.markItem(key, item)
	}
}

// smallest is the item with the smallest n, ties to the greatest id.
func smallest(counts map[string]memCount) string {
	var low string
	best := math.Inf(1)
	for item, c := range counts {
		if c.n < best || c.n == best && item > low {
			low, best = item, c.n
		}
	}
	return low
}

// makeRoom drops the least recently updated tenth of the lists when a new
// one would pass max_contexts.
func (m *memory) makeRoom() {
	if len(m.lists) < m.cfg.MaxContexts {
		return
	}
	keys := slices.Collect(maps.Keys(m.lists))
	slices.SortFunc(keys, func(a, b uint64) int {
		return cmp.Or(cmp.Compare(m.lists[a].last, m.lists[b].last), cmp.Compare(a, b))
	})
	for _, k := range keys[:max(1, len(keys)/10)] {
		m.drop(k)
	}
}

func (m *memory) drop(key uint64) {
	delete(m.lists, key)
	delete(m.items, key)
	m.cleared[key] = struct{}{}
	m.mark(key)
}

// markItem marks key's list and its item changed.
func (m *memory) markItem(key uint64, item string) {
	m.mark(key)
	its := m.items[key]
	if its == nil {
		its = map[string]struct{}{}
		m.items[key] = its
	}
	its[item] = struct{}{}
}

// committed forgets what the last commit wrote.
func (m *memory) committed() {
	clear(m.dirty)
	clear(m.items)
	clear(m.cleared)
}

func (m *memory) mark(key uint64) {
	m.dirty[key] = struct{}{}
	m.changed[key] = struct{}{}
}

// sweep drops every expired list (list would treat them as absent).
func (m *memory) sweep(watermark int64) {
	for key, l := range m.lists {
		if expired(m.ttl, l.last, watermark) {
			m.drop(key)
		}
	}
}

// capture returns every list, sorted by key and item.
func (m *memory) capture() []model.MemoryList {
	if len(m.exported) == 0 {
		for key := range m.lists { // first capture (or after a restart): export all
			m.changed[key] = struct{}{}
		}
	}
	for key := range m.changed {
		if l := m.lists[key]; l != nil {
			m.exported[key] = l.export(key)
		} else {
			delete(m.exported, key)
		}
	}
	clear(m.changed)
	out := make([]model.MemoryList, 0, len(m.exported))
	for _, key := range slices.Sorted(maps.Keys(m.exported)) {
		out = append(out, m.exported[key])
	}
	return out
}

func (l *memList) export(key uint64) model.MemoryList {
	ml := model.MemoryList{Key: key, Ref: l.ref, Items: make([]model.MemoryItem, 0, len(l.counts))}
	for _, item := range slices.Sorted(maps.Keys(l.counts)) {
		if c := l.counts[item]; c.n > c.err {
			ml.Items = append(ml.Items, model.MemoryItem{Item: item, Count: c.n - c.err})
		}
	}
	return ml
}
