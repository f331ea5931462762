package serve

import (
	"maps"
	"slices"
	"time"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// The serving side of the model's memory (online/model/memory.go): each
// version holds the memory lists with their items resolved to item
// indexes; a request turns the lists of its context into sparse boosts of
// the logit, which the kernel adds to the dot product of the few items
// they name, so ranking stays exact top-k over the whole catalog.

// memList is a memory list with item indexes.
type memList struct {
	ref   int64
	items []memEntry
}

type memEntry struct {
	idx   int32
	count float64
}

// boost is the memory term of one item for one request.
type boost struct {
	idx int32
	z   float32
}

// nextMemory returns the lists of n after d: m's lists with d's changed
// lists replaced and its deleted ones removed (copy on write).
func (n *Model) nextMemory(prev map[uint64]*memList, d *snapshot.Delta) map[uint64]*memList {
	if len(d.Memory) == 0 && len(d.MemoryDeleted) == 0 {
		return prev
	}
	out := maps.Clone(prev)
	if out == nil {
		out = map[uint64]*memList{}
	}
	for _, k := range d.MemoryDeleted {
		delete(out, k)
	}
	for _, l := range d.Memory {
		ml := &memList{ref: l.Ref, items: make([]memEntry, 0, len(l.Items))}
		for _, it := range l.Items {
			if i, ok := n.index[it.Item]; ok {
				ml.items = append(ml.items, memEntry{idx: int32(i), count: it.Count})
			}
		}
		out[l.Key] = ml
	}
	return out
}

// boosts returns the memory term of every item named by the lists of a
// request's context, sorted by item index; nil when the model has none.
func (m *Model) boosts(task string, ctx []stream.Field, tp *model.TaskParams, at time.Time) []boost {
	cfg := m.Config.Memory
	if !cfg.Enabled || len(m.memory) == 0 || len(tp.Memory) == 0 {
		return nil
	}
	z := map[int32]float32{}
	for _, k := range cfg.MemoryKeys(nil, task, ctx) {
		l, w := m.memory[k.ID], tp.Memory[k.Field]
		if l == nil || w == 0 {
			continue
		}
		decay := model.Decay(l.ref, at.UnixMilli(), cfg.HalfLife)
		for _, e := range l.items {
			z[e.idx] += cfg.RankTerm(w, e.count, decay)
		}
	}
	out := make([]boost, 0, len(z))
	for idx, v := range z {
		out = append(out, boost{idx: idx, z: v})
	}
	slices.SortFunc(out, func(a, b boost) int { return int(a.idx - b.idx) })
	return out
}

// addBoosts adds the boosts of the items [b, b+len(logits)) of the matrix
// to their logits.
func addBoosts(logits []float32, b int, boosts []boost) {
	j, _ := slices.BinarySearchFunc(boosts, int32(b), func(x boost, t int32) int { return int(x.idx - t) })
	for ; j < len(boosts) && int(boosts[j].idx) < b+len(logits); j++ {
		logits[int(boosts[j].idx)-b] += boosts[j].z
	}
}
