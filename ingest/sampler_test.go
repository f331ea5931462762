package ingest

import (
	"fmt"
	"math"
	"testing"
)

// The growable Fenwick tree draws each item in proportion to its count,
// also after counts change and items are added, and the probability it
// reports is the item's share.
func TestPopularityDrawFollowsCounts(t *testing.T) {
	var c canvasPool
	c.index = map[string]int{}
	counts := map[string]int64{}
	for i := 0; i < 37; i++ { // not a power of two
		id := fmt.Sprintf("m-%d", i)
		c.add(id, int64(i%5+1))
		counts[id] = int64(i%5 + 1)
	}
	c.add("m-3", 20)
	counts["m-3"] += 20
	var total int64
	for _, n := range counts {
		total += n
	}
	if c.total != total {
		t.Fatalf("total %d, want %d", c.total, total)
	}
	const draws = 200000
	seen := map[string]int{}
	for i := 0; i < draws; i++ {
		item, q, ok := c.draw(SamplerPopularity, uint64(i)*0x9e3779b97f4a7c15, "")
		if !ok {
			t.Fatal("no draw from a full pool")
		}
		if want := float64(counts[item]) / float64(total); q != want {
			t.Fatalf("%s: probability %v, want %v", item, q, want)
		}
		seen[item]++
	}
	for id, n := range counts {
		p := float64(n) / float64(total)
		sd := math.Sqrt(draws * p * (1 - p))
		if got := float64(seen[id]); math.Abs(got-draws*p) > 5*sd {
			t.Errorf("%s drawn %v times, expected %.0f ± %.0f", id, got, draws*p, 5*sd)
		}
	}
}

// A pool that holds only the excluded item draws nothing.
func TestDrawNeverReturnsTheExcludedItem(t *testing.T) {
	var c canvasPool
	c.index = map[string]int{}
	c.add("m-1", 3)
	for _, s := range []string{SamplerPopularity, SamplerUniform} {
		if item, _, ok := c.draw(s, 42, "m-1"); ok {
			t.Errorf("%s drew %s, the excluded item", s, item)
		}
	}
}
