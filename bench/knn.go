package bench

import (
	"math"
	"sort"

	"github.com/unirec/unirec/ingest"
)

// itemKNN is Amazon's item-to-item baseline: cosine co-engagement over
// users' recent histories. Two items co-occur once for every user whose
// last `window` positively engaged items hold both; their similarity is
// co / sqrt(n_i n_j), n_i the users whose window holds i.
//
// A query with a source item (related_items) is answered by the items most
// similar to it; any other query with a known user by the sum of the
// similarities to the user's last `window` training items; global
// popularity fills the answer up to K (and answers queries with neither).
type itemKNN struct {
	t      *trainIndex
	window int
	nbrs   [][]neighbor // per item, most similar first
}

type neighbor struct {
	i   int32
	sim float32
}

func newItemKNN(t *trainIndex, _ []ingest.Event, window int) *itemKNN {
	n := make([]float64, len(t.ids))
	co := map[[2]int32]float32{}
	for _, h := range t.recent {
		h = h[max(0, len(h)-window):]
		for a, i := range h {
			n[i]++
			for _, j := range h[a+1:] {
				if i > j {
					co[[2]int32{j, i}]++
				} else {
					co[[2]int32{i, j}]++
				}
			}
		}
	}
	k := &itemKNN{t: t, window: window, nbrs: make([][]neighbor, len(t.ids))}
	for p, c := range co {
		s := float32(float64(c) / math.Sqrt(n[p[0]]*n[p[1]]))
		k.nbrs[p[0]] = append(k.nbrs[p[0]], neighbor{p[1], s})
		k.nbrs[p[1]] = append(k.nbrs[p[1]], neighbor{p[0], s})
	}
	for _, ns := range k.nbrs {
		sort.Slice(ns, func(a, b int) bool {
			if ns[a].sim != ns[b].sim {
				return ns[a].sim > ns[b].sim
			}
			return ns[a].i < ns[b].i
		})
	}
	return k
}

func (k *itemKNN) Name() string { return "item-knn" }

func (k *itemKNN) Answer(q BaselineQuery) ([]string, []float64) {
	primary := k.t.noScores()
	add := func(i int32, w float64) {
		for _, nb := range k.nbrs[i] {
			if math.IsNaN(primary[nb.i]) {
				primary[nb.i] = 0
			}
			primary[nb.i] += w * float64(nb.sim)
		}
	}
	if src, ok := k.t.idx[q.Event.Context["source_item_id"]]; ok && q.Event.Context["source_item_id"] != "" {
		add(src, 1)
	} else if u := q.Event.Context["user_id"]; u != "" {
		for _, i := range k.t.lastN(u, k.window) {
			add(i, 1)
		}
	}
	return k.t.answer(q, primary, true)
}
