package online

import (
	"slices"
	"strings"

	"github.com/unirec/unirec/online/model"
)

// popTable is a task's popularity: the summed positive weight of each
// item, and the items changed since the last commit. An engagement costs
// one map lookup (a count map beside a dirty set of (task, item) keys
// cost two, and made popularity the longest lane of the log stage).
type popTable struct {
	index map[string]int32
	items []popItem
	dirty []int32 // changed since the last commit, each once
}

type popItem struct {
	item  string
	n     float64
	dirty bool
}

func newPopTable() *popTable { return &popTable{index: map[string]int32{}} }

// at returns the position of item's entry, added with a count of 0 when
// new.
func (p *popTable) at(item string) int32 {
	i, ok := p.index[item]
	if !ok {
		i = int32(len(p.items))
		p.items = append(p.items, popItem{item: item})
		p.index[item] = i
	}
	return i
}

// add counts weight w for item and marks it for the next commit.
func (p *popTable) add(item string, w float64) {
	i := p.at(item)
	e := &p.items[i]
	e.n += w
	if !e.dirty {
		e.dirty = true
		p.dirty = append(p.dirty, i)
	}
}

// set gives item the count n, not marked changed (a stored count, loaded).
func (p *popTable) set(item string, n float64) { p.items[p.at(item)].n = n }

// committed forgets which items changed.
func (p *popTable) committed() {
	for _, i := range p.dirty {
		p.items[i].dirty = false
	}
	p.dirty = p.dirty[:0]
}

// top returns the n most popular items, ties by id.
func (p *popTable) top(n int) []model.Popular {
	out := make([]model.Popular, 0, len(p.items))
	for _, e := range p.items {
		out = append(out, model.Popular{Item: e.item, Score: e.n})
	}
	slices.SortFunc(out, func(a, b model.Popular) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Item, b.Item)
	})
	return out[:min(len(out), n)]
}
