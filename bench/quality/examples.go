package quality

import (
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// Labelled examples from engagement-only logs. MovieLens has no
// impressions, so the harness labels engagements itself, as the ingest
// join would (an action's label and weight times the canvas weight), and
// draws negatives for every positive from a sampler that records the
// probability of each draw in Example.SampleProb, for the trainer's log-Q
// correction.

// catalog is every item with its metadata, in a fixed order.
type catalog struct {
	ids   []string
	meta  []stream.ItemMeta
	index map[string]int
}

func movieCatalog(ml *datasets.MovieLens) *catalog {
	c := &catalog{index: map[string]int{}}
	ids := make([]int, 0, len(ml.Movies))
	for id := range ml.Movies {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		mv := ml.Movies[id]
		c.index["m-"+strconv.Itoa(id)] = len(c.ids)
		c.ids = append(c.ids, "m-"+strconv.Itoa(id))
		c.meta = append(c.meta, stream.ItemMeta{Type: "video", Title: mv.Title, Categories: mv.Genres})
	}
	return c
}

// label turns an event into its labelled example; ok is false for actions
// that carry no label.
func label(reg *ingest.Registry, e *ingest.Event) (stream.Example, bool) {
	cv := reg.Canvas(e.Canvas)
	act, ok := cv.Actions[e.Action]
	if !ok {
		return stream.Example{}, false
	}
	ex := reg.Normalize(e)
	ex.Weight = float32(act.Weight * cv.Weight)
	if act.Positive {
		ex.Label = 1
	}
	return ex, true
}

// sampler draws negative items: with probability 1/2 uniformly from the
// catalog, else in proportion to their engagements so far (a unigram
// distribution, as production samplers use).
type sampler struct {
	rng     *rand.Rand
	catalog int
	unigram float64 // probability of a draw from the engagements
	counts  map[int]int
	events  []int // one entry per engagement
}

func newSampler(seed uint64, catalog int, unigram float64) *sampler {
	return &sampler{rng: rand.New(rand.NewPCG(seed, 1)), catalog: catalog, unigram: unigram, counts: map[int]int{}}
}

// observe records an engagement of item.
func (s *sampler) observe(item int) {
	s.counts[item]++
	s.events = append(s.events, item)
}

// draw returns an item and the probability q of drawing it in one draw.
func (s *sampler) draw() (int, float32) {
	var item int
	if len(s.events) == 0 || s.rng.Float64() >= s.unigram {
		item = s.rng.IntN(s.catalog)
	} else {
		item = s.events[s.rng.IntN(len(s.events))]
	}
	q := 1 / float64(s.catalog)
	if len(s.events) > 0 {
		q = (1-s.unigram)/float64(s.catalog) + s.unigram*float64(s.counts[item])/float64(len(s.events))
	}
	return item, float32(q)
}

// trainingStream labels the events in order and follows every positive
// with k sampled negatives of the same request context.
func trainingStream(reg *ingest.Registry, cat *catalog, evs []ingest.Event, k int, unigram float64, seed uint64) []stream.Example {
	s := newSampler(seed, len(cat.ids), unigram)
	out := make([]stream.Example, 0, len(evs)*(k+1))
	for i := range evs {
		ex, ok := label(reg, &evs[i])
		if !ok {
			continue
		}
		out = append(out, ex)
		if ex.Label == 0 {
			continue
		}
		pos := cat.index[ex.ItemID]
		for j := 0; j < k; j++ {
			item, q := s.draw()
			if item == pos {
				continue
			}
			neg := ex
			neg.ItemID, neg.Item, neg.Label, neg.Weight, neg.SampleProb = cat.ids[item], cat.meta[item], 0, 1, q
			neg.Action = "sampled"
			out = append(out, neg)
		}
		s.observe(pos)
	}
	return out
}
