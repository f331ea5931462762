package model

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/unirec/unirec/stream"
)

// Memorization: the factorised dot product generalizes, but at a small
// dim it cannot remember "this query / category / source item -> exactly
// these items" at full rank. So the model also keeps, per context value,
// a bounded list of the items engaged with in it (a decayed, weighted
// count, learned from the stream like every row), and adds
//
//	m = sum over the request's memory keys k of  w[task, field(k)] * ln(1 + n_k(item))
//
// to the logit, with one learned weight per (task, context field): the
// wide part of Wide & Deep over count features (Monolith's cross
// features, Netflix's context features). Keys are every context field
// value of the unified context except the excluded fields (the user's own
// history is already in the user's row and excluded at serving). Serving scores the whole catalog with the dot product and adds
// m to the few items in the request's lists, so the answer stays the
// exact top-k of one model.

// MemoryLanes is how many lanes by key the trainer keeps the memory in
// (online/memory_lanes.go): max_contexts is shared among them.
const MemoryLanes = 4

// MemoryConfig configures memorization.
type MemoryConfig struct {
	// Enabled adds the memory term to the logit (default true).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Exclude names the context fields that get no memory list.
	Exclude []string `yaml:"exclude" json:"exclude"`
	// ItemsPerContext bounds each list; a new item replaces the smallest
	// count and inherits it (space-saving), so heavy items always stay.
	ItemsPerContext int `yaml:"items_per_context" json:"items_per_context"`
	// MaxContexts bounds the number of lists, at least one per memory
	// lane. The trainer splits it over its MemoryLanes lanes by key
	// (online/memory_lanes.go), the shares differing by one at most: a
	// lane past its share drops its least recently updated tenth.
	MaxContexts int `yaml:"max_contexts" json:"max_contexts"`
	// LearningRate is the AdaGrad rate of the per-(task, field) weights.
	LearningRate float64 `yaml:"learning_rate" json:"learning_rate"`
	// RankScale multiplies the memory term when ranking (serving). The
	// weights are learned for log loss against sampled negatives, most of
	// them easy (unpopular) items the dot product already rejects, so the
	// loss gains little from them and learns small weights; among the
	// plausible items a ranking compares, in-context counts are worth more
	// (bench/README.md measures it). 1 scores exactly the trained logit.
	RankScale float64 `yaml:"rank_scale" json:"rank_scale"`
	// HalfLife halves a count every HalfLife of event time (recency);
	// 0 keeps counts forever.
	HalfLife time.Duration `yaml:"half_life" json:"half_life"`
}

// DefaultMemoryConfig is the memory of DefaultModelConfig.
func DefaultMemoryConfig() MemoryConfig {
	return MemoryConfig{Enabled: true, Exclude: []string{"user_id", "country", "language", "device"}, ItemsPerContext: 100, MaxContexts: 200_000,
		LearningRate: 0.5, RankScale: 8}
}

// Validate checks the memory configuration; errors name the field.
func (c MemoryConfig) Validate() error {
	switch {
	case !c.Enabled:
		return nil
	case c.ItemsPerContext < 1 || c.ItemsPerContext > 100_000:
		return fmt.Errorf("model.memory.items_per_context must be in [1, 100000], got %d", c.ItemsPerContext)
	case c.MaxContexts < MemoryLanes:
		return fmt.Errorf("model.memory.max_contexts must be at least %d (a list per memory lane), got %d", MemoryLanes, c.MaxContexts)
	case !(c.LearningRate > 0) || math.IsInf(c.LearningRate, 0):
		return fmt.Errorf("model.memory.learning_rate must be a positive number, got %g", c.LearningRate)
	case !(c.RankScale > 0) || math.IsInf(c.RankScale, 0):
		return fmt.Errorf("model.memory.rank_scale must be a positive number, got %g", c.RankScale)
	case c.HalfLife < 0:
		return fmt.Errorf("model.memory.half_life must not be negative, got %s", c.HalfLife)
	}
	return nil
}

// MemoryKey is one memory list a context reads: its id and the context
// field it comes from.
type MemoryKey struct {
	ID    uint64
	Field string
}

// sentinel is the unified context's value of a field the canvas lacks
// (ingest.SentinelDefault); it gets no list of its own.
const sentinel = "<none>"

// MemoryKeys appends the memory keys of a request context of task: one per
// non-excluded field with a value. (A list of the task itself, per-task
// popularity, lowered recall on MovieLens: it boosts the same popular items
// for every request, over the user's own dot product.) A query
// is keyed by its lower-cased tokens, so case and punctuation do not split
// its counts.
func (c MemoryConfig) MemoryKeys(dst []MemoryKey, task string, ctx []stream.Field) []MemoryKey {
	if !c.Enabled {
		return dst
	}
	seed := Mix64(hMemory ^ xxhash.Sum64String(task)*0x9e3779b97f4a7c15)
	for _, fl := range ctx {
		if fl.Value == "" || fl.Value == sentinel || slices.Contains(c.Exclude, fl.Name) {
			continue
		}
		h := xxhash.Sum64String(fl.Value)
		if fl.Name == fieldQuery {
			h = tokensHash(fl.Value)
		}
		dst = append(dst, MemoryKey{ID: Mix64(seed ^ Mix64(xxhash.Sum64String(fl.Name)^h)), Field: fl.Name})
	}
	return dst
}

var hMemory = xxhash.Sum64String("mem")

// MemoryUserField is the context field that names the user: a memory
// count read for an example leaves out the latest engagements of its own
// user (online/memory.go).
const MemoryUserField = "user_id"

// MemoryUser is the hash of ctx's user, 0 when it names none.
func MemoryUser(ctx []stream.Field) uint64 {
	for _, fl := range ctx {
		if fl.Name == MemoryUserField && fl.Value != "" && fl.Value != sentinel {
			return xxhash.Sum64String(fl.Value) | 1
		}
	}
	return 0
}

// tokensHash hashes the sequence of lower-cased tokens of s.
func tokensHash(s string) uint64 {
	h := uint64(0x51afd7ed558ccd)
	forEachToken(s, func(t uint64) { h = Mix64(h ^ t) })
	return h
}

// MemoryFeature is the count feature of an item in a list: ln(1 + n).
func MemoryFeature(n float64) float32 {
	if !(n > 0) {
		return 0
	}
	return float32(math.Log1p(n))
}

// Decay is the factor that brings a count stored relative to ref (ms) to
// time at (ms) under the half-life h; 1 without one, and 1 for an at
// before ref (an event out of order never inflates a count). A stored
// value v counts v * Decay(ref, at, h) at time at.
func Decay(ref, at int64, h time.Duration) float64 {
	if h <= 0 || at <= ref {
		return 1
	}
	return math.Exp2(-float64(at-ref) / float64(h.Milliseconds()))
}

// RankTerm is the memory term of an item with stored count n in a list
// whose counts decay by decay, for a field of weight w, as ranking scores
// it (scaled by RankScale).
func (c MemoryConfig) RankTerm(w float32, n, decay float64) float32 {
	return float32(c.RankScale) * w * MemoryFeature(n*decay)
}

// MemoryList is one context's list as snapshots carry it: counts stored
// relative to Ref (event time, ms).
type MemoryList struct {
	Key   uint64
	Ref   int64
	Items []MemoryItem // sorted by item id
}

// MemoryItem is an item's stored count in a list.
type MemoryItem struct {
	Item  string
	Count float64
}
