package ingest

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/bits"
	"strings"

	"github.com/unirec/unirec/stream"
)

// Negative samplers of engagement-only canvases.
const (
	SamplerUniform    = "uniform"    // every item engaged with so far, equally likely
	SamplerPopularity = "popularity" // proportional to its engagements so far
)

// ActionSampledNegative is the action of a sampled negative example.
const ActionSampledNegative = "sampled_negative"

// sampleNegatives draws the canvas' number of negatives for one positive of
// an engagement-only canvas from the items engaged with so far in this
// partition (never the positive's item), each with the probability it had
// in one draw recorded in SampleProb, so the trainer or the server can
// correct for it (log-Q). The positive's item then joins the pool. Draws are
// a pure function of the event id and the pool, so a replay samples the
// same negatives.
func (g *Ingester) sampleNegatives(st *partition, c *Canvas, pos *stream.Example) {
	pool := st.pool.canvas(c.Name)
	if pos.Item.Type != "" || pos.Item.Title != "" || len(pos.Item.Categories) > 0 {
		st.meta[pos.ItemID] = pos.Item
	}
	seed := hashString(pos.EventID)
	for k := 0; k < c.Negatives; k++ {
		item, q, ok := pool.draw(c.NegativeSampler, seed+uint64(k)*0x9e3779b97f4a7c15, pos.ItemID)
		if !ok {
			continue
		}
		neg := *pos
		neg.ItemID, neg.Action, neg.Position, neg.Item = item, ActionSampledNegative, -1, st.meta[item]
		if g.opts.Catalog != nil {
			if m, ok := g.opts.Catalog.Lookup(item); ok {
				neg.Item = m
			}
		}
		g.appendExample(st, &neg, false, float32(c.Weight), float32(q))
		st.tally.task(c.Name).sampledNegatives++
	}
	if !st.pool.add(c.Name, pos.ItemID) {
		st.tally.poolDropped++
	}
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// unit maps a seed to [0, 1) (splitmix64 finalizer).
func unit(x uint64) float64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53)
}

// itemPool holds, per canvas, the items engaged with so far and how often.
// Changed counts are written to the changelog once per batch.
//
// Item ids come from untrusted events, so a canvas' pool holds at most max
// items: an item engaged with once the pool is full is not added (counted
// as dropped); items already in it keep counting.
type itemPool struct {
	canvases map[string]*canvasPool
	dirty    map[string]int64 // changelog key -> count
	max      int
}

func newItemPool() itemPool {
	return itemPool{canvases: map[string]*canvasPool{}, dirty: map[string]int64{}}
}

func (p *itemPool) canvas(name string) *canvasPool {
	c := p.canvases[name]
	if c == nil {
		c = &canvasPool{index: map[string]int{}}
		p.canvases[name] = c
	}
	return c
}

func poolKey(canvas, item string) string { return "c" + canvas + "\x00" + item }

// add counts one engagement of item; it reports false when the item is
// new and the pool is full.
func (p *itemPool) add(canvas, item string) bool {
	c := p.canvas(canvas)
	if _, ok := c.index[item]; !ok && p.max > 0 && len(c.items) >= p.max {
		return false
	}
	n := c.add(item, 1)
	p.dirty[poolKey(canvas, item)] = n
	return true
}

// flush writes the changed counts.
func (p *itemPool) flush(log func(key string, value []byte)) {
	for k, n := range p.dirty {
		log(k, binary.AppendUvarint(nil, uint64(n)))
	}
	clear(p.dirty)
}

// load restores one count from the changelog.
func (p *itemPool) load(key string, value []byte) error {
	canvas, item, ok := strings.Cut(key[1:], "\x00")
	n, l := binary.Uvarint(value)
	if !ok || l <= 0 || n == 0 {
		return fmt.Errorf("cannot decode item count %q", key)
	}
	c := p.canvas(canvas)
	c.add(item, int64(n)-c.count(item))
	return nil
}

// canvasPool is a growable Fenwick tree of item counts: O(log n) update
// and popularity-proportional draw.
type canvasPool struct {
	items  []string
	index  map[string]int
	counts []int64 // per item
	tree   []int64 // Fenwick tree, 1-based in spirit: tree[i-1] covers (i-lowbit(i), i]
	total  int64
}

func (c *canvasPool) count(item string) int64 {
	if i, ok := c.index[item]; ok {
		return c.counts[i]
	}
	return 0
}

// add adds delta to item's count and returns the new count.
func (c *canvasPool) add(item string, delta int64) int64 {
	i, ok := c.index[item]
	if !ok {
		i = len(c.items)
		c.index[item] = i
		c.items = append(c.items, item)
		c.counts = append(c.counts, 0)
		// tree[i] covers items (j-lowbit(j), j] with j = i+1.
		j := i + 1
		c.tree = append(c.tree, c.prefix(i)-c.prefix(j-(j&-j)))
	}
	c.counts[i] += delta
	c.total += delta
	for j := i + 1; j <= len(c.tree); j += j & -j {
		c.tree[j-1] += delta
	}
	return c.counts[i]
}

// prefix is the sum of the counts of the first n items.
func (c *canvasPool) prefix(n int) int64 {
	var s int64
	for j := n; j > 0; j -= j & -j {
		s += c.tree[j-1]
	}
	return s
}

// draw picks an item other than exclude and returns its one-draw
// probability; ok is false when there is none to pick.
func (c *canvasPool) draw(sampler string, seed uint64, exclude string) (string, float64, bool) {
	for attempt := uint64(0); attempt < 4; attempt++ {
		u := unit(seed + attempt)
		var i int
		var q float64
		if sampler == SamplerPopularity {
			if c.total <= 0 {
				return "", 0, false
			}
			i = c.search(int64(u * float64(c.total)))
			q = float64(c.counts[i]) / float64(c.total)
		} else {
			if len(c.items) == 0 {
				return "", 0, false
			}
			i = int(u * float64(len(c.items)))
			q = 1 / float64(len(c.items))
		}
		if c.items[i] != exclude {
			return c.items[i], q, true
		}
	}
	return "", 0, false
}

// search returns the item whose cumulative count range holds target.
func (c *canvasPool) search(target int64) int {
	pos := 0
	for step := 1 << (bits.Len(uint(len(c.tree))) - 1); step > 0; step >>= 1 {
		if next := pos + step; next <= len(c.tree) && c.tree[next-1] <= target {
			pos = next
			target -= c.tree[next-1]
		}
	}
	return pos
}
