package online

import (
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// memories is the trainer's memory in memLanes lanes by context key (its
// top bits: keys are hashes). A lane holds every list of its keys and its
// share of max_contexts at most (shares differ by one), so its counts, drops and
// evictions depend only on the examples in log order and its own keys:
// the log stage does each lane on its own (logstage.go), and the lane
// count is fixed, never the number of workers. Lanes cover ordered
// ranges of keys, so their lists in lane order are sorted by key.
type memories [memLanes]*memory

const (
	memLaneBits = 2
	memLanes    = 1 << memLaneBits
)

var _ [memLanes - model.MemoryLanes]struct{} // the lanes model.Validate counts
var _ [model.MemoryLanes - memLanes]struct{}

func memLaneOf(key uint64) int { return int(key >> (64 - memLaneBits)) }

func newMemories(cfg model.MemoryConfig, ttl int64) memories {
	var ms memories
	for l := range ms {
		per := cfg
		per.MaxContexts = cfg.MaxContexts / memLanes
		if l < cfg.MaxContexts%memLanes {
			per.MaxContexts++
		}
		ms[l] = newMemory(per, ttl)
	}
	return ms
}

// readMemory is the memory's work on ex, every lane's, done inline at
// watermark wm (the examples' before ex).
func (ms memories) readMemory(ex *stream.Example, f *features, wm int64) {
	for l, m := range ms {
		m.readLane(l, ex, f, wm)
	}
}

func (ms memories) sweep(watermark int64) {
	for _, m := range ms {
		m.sweep(watermark)
	}
}

func (ms memories) committed() {
	for _, m := range ms {
		m.committed()
	}
}

// capture returns every list, sorted by key and item.
func (ms memories) capture() []model.MemoryList {
	var out []model.MemoryList
	for _, m := range ms {
		out = append(out, m.capture()...)
	}
	return out
}
