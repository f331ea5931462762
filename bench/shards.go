package bench

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
)

// The sharded trainer on paper, measured on a real log (DESIGN.md,
// "Sharding the trainer"): rows are owned by S trainer processes by
// feature-id hash; the log is cut into synchronous steps of B examples;
// example i of a step is computed by process i mod S, which pulls the
// rows its examples read from their owners and pushes one summed
// gradient per remote row back. This counts what that exchange and that
// ownership cost, without training.

// ShardFigures is one (shards, batch) point of the simulation.
type ShardFigures struct {
	Shards, Batch int
	Replicated    int // rows every process holds (the most updated)
	Examples      int
	// RowsPerStep is the mean number of distinct rows a step reads.
	RowsPerStep float64
	// PullBytes and PushBytes are per example: rows fetched from other
	// processes, and summed gradients sent to their owners, at
	// (dim+1) float32 each.
	PullBytes, PushBytes float64
	// Imbalance is the busiest owner's row updates over the mean owner's
	// (replicated rows excluded), over the whole log; HotRow is the share
	// of all row updates that go to the single most updated row.
	Imbalance, HotRow float64
}

// ShardLog turns events into the feature ids of the examples a trainer
// would learn: each positive the registry accepts, then negatives
// whose items are drawn from earlier positives (popularity-weighted, as
// in-stream sampling is), seeded.
func ShardLog(reg *ingest.Registry, evs []ingest.Event, negatives int, seed uint64) [][]uint64 {
	var feat model.Featurizer
	rng := rand.New(rand.NewPCG(seed, seed))
	var seen []ingest.Event
	var out [][]uint64
	for i := range evs {
		ex := reg.Normalize(&evs[i])
		if ex.Task == "" {
			continue
		}
		ids := feat.Context(nil, ex.Task, ex.Context, evs[i].Time)
		out = append(out, feat.Item(slices.Clone(ids), ex.Task, ex.ItemID, ex.Item))
		for k := 0; k < negatives && len(seen) > 0; k++ {
			neg := reg.Normalize(&seen[rng.IntN(len(seen))])
			out = append(out, feat.Item(slices.Clone(ids), ex.Task, neg.ItemID, neg.Item))
		}
		seen = append(seen, evs[i])
	}
	return out
}

// SimulateShards counts the exchange and the ownership balance of log
// (feature ids per example, in log order) for shards processes and steps
// of batch examples, with rows of dim weights and a bias. The replicate
// most updated rows of the whole log are held by every process instead of
// one owner (as dense parameters are): each process sends its summed
// gradient of such a row to every other once per step, and applies all of
// them itself, in process order.
func SimulateShards(log [][]uint64, shards, batch, dim, replicate int) ShardFigures {
	f := ShardFigures{Shards: shards, Batch: batch, Replicated: replicate, Examples: len(log)}
	rowBytes := float64(4 * (dim + 1))
	perRow := map[uint64]int{}
	for _, ids := range log {
		for _, id := range ids {
			perRow[id]++
		}
	}
	dense := hottest(perRow, replicate)
	updates := make([]int, shards)
	var pulls, pushes, rows, steps int
	for start := 0; start < len(log); start += batch {
		step := log[start:min(start+batch, len(log))]
		read := map[uint64]bool{}
		remote := make([]map[uint64]bool, shards) // per computing process
		shared := make([]map[uint64]bool, shards)
		for i, ids := range step {
			w := i % shards
			for _, id := range ids {
				read[id] = true
				switch o := owner(id, shards); {
				case dense[id]:
					shared[w] = add(shared[w], id)
				case o != w:
					updates[o]++
					remote[w] = add(remote[w], id)
				default:
					updates[o]++
				}
			}
		}
		for w := range shards {
			pulls += len(remote[w]) // fetched once per step
			pushes += len(remote[w]) + len(shared[w])*(shards-1)
		}
		rows += len(read)
		steps++
	}
	if steps == 0 {
		return f
	}
	total, hot := 0, 0
	for _, n := range perRow {
		total += n
		hot = max(hot, n)
	}
	owned := 0
	for _, n := range updates {
		owned += n
	}
	f.RowsPerStep = float64(rows) / float64(steps)
	f.PullBytes = float64(pulls) * rowBytes / float64(len(log))
	f.PushBytes = float64(pushes) * rowBytes / float64(len(log))
	if owned > 0 {
		f.Imbalance = float64(slices.Max(updates)) / (float64(owned) / float64(shards))
	}
	f.HotRow = float64(hot) / float64(total)
	return f
}

// hottest returns the n rows with the most updates (ties by id).
func hottest(perRow map[uint64]int, n int) map[uint64]bool {
	ids := slices.Collect(maps.Keys(perRow))
	slices.SortFunc(ids, func(a, b uint64) int { return cmp.Or(cmp.Compare(perRow[b], perRow[a]), cmp.Compare(a, b)) })
	out := map[uint64]bool{}
	for _, id := range ids[:min(n, len(ids))] {
		out[id] = true
	}
	return out
}

func add(set map[uint64]bool, id uint64) map[uint64]bool {
	if set == nil {
		set = map[uint64]bool{}
	}
	set[id] = true
	return set
}

// owner is the process that owns a row.
func owner(id uint64, shards int) int { return int(model.Mix64(id) % uint64(shards)) }

// ShardTable is figures as a report table, with the exchange sized at
// rate examples per second.
func ShardTable(figs []ShardFigures, rate float64) Table {
	t := Table{Title: "Sharded trainer: exchange and owner balance",
		Header: []string{"processes", "step (examples)", "rows replicated", "distinct rows per step", "pull + push per example",
			fmt.Sprintf("exchange at %.0f examples/s", rate), "busiest owner / mean", "hottest row's share"}}
	for _, f := range figs {
		per := f.PullBytes + f.PushBytes
		t.Rows = append(t.Rows, []string{fmt.Sprint(f.Shards), fmt.Sprint(f.Batch), fmt.Sprint(f.Replicated), fmt.Sprintf("%.0f", f.RowsPerStep),
			fmt.Sprintf("%.0f B", per), fmt.Sprintf("%.1f MB/s", per*rate/1e6), fmt.Sprintf("%.2f", f.Imbalance), fmt.Sprintf("%.3f", f.HotRow)})
	}
	return t
}
