package online

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/unirec/unirec/online/model"
)

// The trainer's memory: per context value, a bounded list of the items
// engaged with in it (model/memory.go says why and how it scores). Every
// change is a function of the examples in log order, so a restarted or
// standby trainer holds the same lists: an example reads the counts before
// its own positive is added (prequential), lists are bounded by
// space-saving replacement, and contexts beyond the lane's share of
// max_contexts are dropped least recently updated first, ties by key (a
// memory is one lane of the trainer's: memory_lanes.go).

// memList is one context's list: counts stored relative to ref, in a
// slice indexed by the items' hashes (a string-keyed map was most of the
// memory's cost: every example reads a count, most of them absent).
type memList struct {
	entries []memEntry
	index   map[uint64]int32 // item hash -> position in entries
	// collided is set once two items of the list shared a hash: the one
	// not indexed is then found by a scan.
	collided bool
	ref      int64 // event time (ms) the stored counts are relative to
	last     int64 // event time of the last update (expiry, eviction)
}

// memEntry is an item of a list: its count, and the commit generation
// that last marked it for writing.
type memEntry struct {
	item string
	hash uint64
	memCount
	marked uint64
}

func newMemList(ref int64) *memList {
	return &memList{index: map[uint64]int32{}, ref: ref}
}

func itemHash(item string) uint64 { return xxhash.Sum64String(item) }

// find returns the position of item (its hash h), -1 when absent.
func (l *memList) find(item string, h uint64) int {
	if i, ok := l.index[h]; ok && l.entries[i].item == item {
		return int(i)
	}
	if l.collided {
		for i := range l.entries {
			if l.entries[i].item == item {
				return i
			}
		}
	}
	return -1
}

// insert appends item with count c and returns its position.
func (l *memList) insert(item string, h uint64, c memCount) int {
	i := len(l.entries)
	l.entries = append(l.entries, memEntry{item: item, hash: h, memCount: c})
	if _, taken := l.index[h]; taken {
		l.collided = true
	} else {
		l.index[h] = int32(i)
	}
	return i
}

// remove deletes the entry at i; the last entry takes its place.
func (l *memList) remove(i int) {
	if j, ok := l.index[l.entries[i].hash]; ok && int(j) == i {
		delete(l.index, l.entries[i].hash)
	}
	last := len(l.entries) - 1
	if i != last {
		l.entries[i] = l.entries[last]
		if j, ok := l.index[l.entries[i].hash]; ok && int(j) == last {
			l.index[l.entries[i].hash] = int32(i)
		}
	}
	l.entries[last] = memEntry{}
	l.entries = l.entries[:last]
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
	// touched holds the items set or evicted since the last commit (the
	// store writes a record per item), each once per generation gen of
	// commits; cleared the keys whose list was dropped or rewritten since
	// (their records are deleted first).
	touched []memRef
	gen     uint64
	cleared map[uint64]struct{}
	changed map[uint64]struct{} // changed or deleted since the last capture
	// exported holds the lists as the last capture exported them: a
	// capture re-exports only the changed ones, and an unchanged list
	// keeps its backing array, so a delta finds it unchanged at once.
	exported map[uint64]model.MemoryList
}

// memRef names an item of a list.
type memRef struct {
	key  uint64
	item string
}

func newMemory(cfg model.MemoryConfig, ttl int64) *memory {
	return &memory{cfg: cfg, ttl: ttl, lists: map[uint64]*memList{}, dirty: map[uint64]struct{}{},
		gen: 1, cleared: map[uint64]struct{}{},
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

// count is the decayed count of item (hash h) in key's list at time at,
// without the latest engagements of user (0: none known).
func (m *memory) count(key uint64, item string, h uint64, user uint64, at, watermark int64) float64 {
	l := m.list(key, watermark)
	if l == nil {
		return 0
	}
	i := l.find(item, h)
	if i < 0 {
		return 0
	}
	c := l.entries[i].memCount
	n := c.n - c.err
	if user != 0 && c.user == user {
		n -= c.own
	}
	return max(0, n) * model.Decay(l.ref, at, m.cfg.HalfLife)
}

// add counts an engagement of weight w by user with item (hash h) in key's
// list at time at.
func (m *memory) add(key uint64, item string, h uint64, user uint64, w float64, at, watermark int64) {
	l := m.list(key, watermark)
	if l == nil {
		m.makeRoom()
		l = newMemList(at)
		m.lists[key] = l
	}
	m.rebase(key, l, at)
	i := l.find(item, h)
	if i < 0 {
		var c memCount
		if len(l.entries) >= m.cfg.ItemsPerContext {
			low := l.smallest()
			c = memCount{n: l.entries[low].n, err: l.entries[low].n}
			m.touch(key, l, low)
			l.remove(low)
		}
		i = l.insert(item, h, c)
	}
	e := &l.entries[i]
	v := w / model.Decay(l.ref, at, m.cfg.HalfLife)
	if e.user != user {
		e.user, e.own = user, 0
	}
	e.n += v
	e.own += v
	l.last = max(l.last, at)
	m.touch(key, l, i)
}

// rebase keeps stored values finite under a half-life: once at is 64
// half-lives past ref, every count is brought to at.
func (m *memory) rebase(key uint64, l *memList, at int64) {
	h := m.cfg.HalfLife.Milliseconds()
	if h <= 0 || at-l.ref < 64*h {
		return
	}
	f := model.Decay(l.ref, at, m.cfg.HalfLife)
	l.ref = at
	m.cleared[key] = struct{}{} // every item changed: rewrite the list
	for i := range l.entries {
		e := &l.entries[i]
		e.n, e.err, e.own = e.n*f, e.err*f, e.own*f
		m.touch(key, l, i)
	}
}

// smallest is the position of the item with the smallest n, ties to the
// greatest id.
func (l *memList) smallest() int {
	low := 0
	for i := 1; i < len(l.entries); i++ {
		e, b := &l.entries[i], &l.entries[low]
		if e.n < b.n || e.n == b.n && e.item > b.item {
			low = i
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
	m.cleared[key] = struct{}{}
	m.mark(key)
}

// touch marks key's list and its item at i changed (once a generation).
func (m *memory) touch(key uint64, l *memList, i int) {
	m.mark(key)
	if e := &l.entries[i]; e.marked != m.gen {
		e.marked = m.gen
		m.touched = append(m.touched, memRef{key, e.item})
	}
}

// committed forgets what the last commit wrote.
func (m *memory) committed() {
	clear(m.dirty)
	clear(m.touched)
	m.touched = m.touched[:0]
	clear(m.cleared)
	m.gen++
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
	ml := model.MemoryList{Key: key, Ref: l.ref, Items: make([]model.MemoryItem, 0, len(l.entries))}
	for i := range l.entries {
		if c := l.entries[i].memCount; c.n > c.err {
			ml.Items = append(ml.Items, model.MemoryItem{Item: l.entries[i].item, Count: c.n - c.err})
		}
	}
	slices.SortFunc(ml.Items, func(a, b model.MemoryItem) int { return strings.Compare(a.Item, b.Item) })
	return ml
}
