package serve

import (
	"fmt"
	"runtime"
	"slices"
	"time"
)

// Environment is how one use case is served, beyond its freshness policy:
// the knobs that let the same model be deployed differently per use case.
// It is inlined in UseCase, so its fields sit next to the others in the
// config.
type Environment struct {
	// Parallelism is how many goroutines score the catalog of one request
	// (in shards of the item matrix); default 1.
	Parallelism int `yaml:"parallelism" json:"parallelism"`
	// CandidateSet names a set of serve.candidate_sets ranked when a
	// request says nothing about candidates ("" ranks the whole catalog of
	// CandidateType).
	CandidateSet string `yaml:"candidate_set" json:"candidate_set,omitempty"`
	// FallbackChain is tried in order when the model cannot answer in time:
	// "popularity" (engagements of this use case's canvas from the events
	// stream) and "static" (FallbackItems); sources fill up to k in turn.
	// Default: [Fallback].
	FallbackChain []string `yaml:"fallback_chain" json:"fallback_chain"`
	// Cache keeps answers of the model for a while (see CacheConfig).
	Cache CacheConfig `yaml:"cache" json:"cache"`
	// Rules are the business rules applied to every answer.
	Rules Rules `yaml:"rules" json:"rules"`
}

// CacheConfig is a use case's response cache. Entries are keyed by the
// context, the candidates, k, the exclusions and the model version, and
// the whole cache is dropped when the use case's version changes.
type CacheConfig struct {
	// TTL is how long an answer is reused; 0 disables the cache.
	TTL time.Duration `yaml:"ttl" json:"ttl"`
	// MaxEntries bounds the cache (oldest first out); default 10000.
	MaxEntries int `yaml:"max_entries" json:"max_entries"`
}

// Rules are business rules, applied as filters while ranking (so the
// answer still has k items when enough candidates pass) and to fallbacks.
type Rules struct {
	// CountryAvailability drops items the catalog does not make available
	// in the request's context.country (items without a country list are
	// available everywhere).
	CountryAvailability bool `yaml:"country_availability" json:"country_availability"`
	// ExcludeRecent drops items the request's user engaged with within
	// this long (from the replica's recent history per user); 0 keeps them.
	ExcludeRecent time.Duration `yaml:"exclude_recent" json:"exclude_recent"`
	// Dedupe drops repeated items: "id" (default: the same id twice) or
	// "title" (also items whose title was already answered).
	Dedupe string `yaml:"dedupe" json:"dedupe"`
	// MaxPerCategory bounds how many answered items share a first
	// category (diversity); 0 means no bound.
	MaxPerCategory int `yaml:"max_per_category" json:"max_per_category"`
}

// The fallback sources and dedupe modes.
const (
	SourceModel = "model"
	SourceNone  = "none"

	DedupeID    = "id"
	DedupeTitle = "title"
)

// resolveEnvironment fills the environment's defaults and checks it,
// before the freshness policy fills Fallback; sets are the configured
// candidate sets.
func (u *UseCase) resolveEnvironment(sets map[string][]string) error {
	f := func(format string, args ...any) error {
		return fmt.Errorf("serve.use_cases[%s]."+format, append([]any{u.Name}, args...)...)
	}
	e := &u.Environment
	if e.Parallelism == 0 {
		e.Parallelism = 1
	}
	if e.Parallelism < 1 || e.Parallelism > 64 {
		return f("parallelism must be in [1, 64], got %d", e.Parallelism)
	}
	if e.CandidateSet != "" {
		if _, ok := sets[e.CandidateSet]; !ok {
			return f("candidate_set %q is not in serve.candidate_sets", e.CandidateSet)
		}
	}
	if len(e.FallbackChain) > 0 && u.Fallback != "" {
		return f("fallback and fallback_chain are both set: keep fallback_chain")
	}
	if len(e.FallbackChain) == 0 {
		e.FallbackChain = []string{cmpOr(u.Fallback, FallbackPopularity)}
	}
	if err := checkChain(e.FallbackChain, u.FallbackItems); err != nil {
		return f("fallback_chain: %v", err)
	}
	if e.Cache.TTL < 0 {
		return f("cache.ttl must not be negative")
	}
	if e.Cache.MaxEntries == 0 {
		e.Cache.MaxEntries = 10000
	}
	if e.Cache.MaxEntries < 0 {
		return f("cache.max_entries must be positive")
	}
	return e.Rules.resolve(f)
}

func (r *Rules) resolve(f func(string, ...any) error) error {
	if r.Dedupe == "" {
		r.Dedupe = DedupeID
	}
	if r.Dedupe != DedupeID && r.Dedupe != DedupeTitle {
		return f("rules.dedupe must be id or title, got %q", r.Dedupe)
	}
	if r.ExcludeRecent < 0 {
		return f("rules.exclude_recent must not be negative")
	}
	if r.MaxPerCategory < 0 {
		return f("rules.max_per_category must not be negative")
	}
	return nil
}

// checkChain checks a fallback chain: known sources, static with items,
// "none" alone.
func checkChain(chain, items []string) error {
	seen := map[string]bool{}
	for _, s := range chain {
		if seen[s] {
			return fmt.Errorf("sources must not repeat, got %v", chain)
		}
		seen[s] = true
		switch s {
		case FallbackPopularity:
		case FallbackStatic:
			if len(items) == 0 {
				return fmt.Errorf("fallback_items must list items for the static source")
			}
		case SourceNone:
			if len(chain) > 1 {
				return fmt.Errorf("none must be alone")
			}
		default:
			return fmt.Errorf("unknown source %q (popularity, static or none)", s)
		}
	}
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// LoadOptions bound the work of a replica, so that overload sheds requests
// early instead of queueing them into collapse.
type LoadOptions struct {
	// MaxInFlight is how many recommend requests are worked on at once
	// (default 4 x GOMAXPROCS).
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxQueue is how many more may wait for a slot, each for at most half
	// its latency budget, leaving the other half to rank (default 8 x
	// MaxInFlight); beyond it a request gets HTTP 429 at once.
	MaxQueue int `yaml:"max_queue"`
	// HistoryPerUser and HistoryUsers bound the recent engagements kept
	// per user (defaults 100 and 100000).
	HistoryPerUser int `yaml:"history_per_user"`
	HistoryUsers   int `yaml:"history_users"`
	// PopularityItems bounds the items the popularity fallback counts per
	// canvas (default DefaultPopularityItems); a new item beyond it evicts
	// one of the least engaged (unirec_serve_popularity_evicted_total).
	PopularityItems int `yaml:"popularity_items"`
	// BatchQueries is how many concurrent whole-catalog rankings one pass
	// over the item matrix scores at most (default DefaultBatchQueries; 1
	// scores every request alone). Batching never waits: see batcher.go.
	BatchQueries int `yaml:"batch_queries"`
}

// Validate checks the bounds; errors name the field.
func (o LoadOptions) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"max_in_flight", o.MaxInFlight}, {"max_queue", o.MaxQueue}, {"history_per_user", o.HistoryPerUser}, {"history_users", o.HistoryUsers},
		{"popularity_items", o.PopularityItems}, {"batch_queries", o.BatchQueries}} {
		if f.v < 0 {
			return fmt.Errorf("serve.load.%s must not be negative, got %d", f.name, f.v)
		}
	}
	return nil
}

func (o *LoadOptions) ensureDefaults() {
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 4 * runtime.GOMAXPROCS(0)
	}
	if o.MaxQueue == 0 {
		o.MaxQueue = 8 * o.MaxInFlight
	}
	if o.HistoryPerUser == 0 {
		o.HistoryPerUser = 100
	}
	if o.HistoryUsers == 0 {
		o.HistoryUsers = 100000
	}
	if o.PopularityItems == 0 {
		o.PopularityItems = DefaultPopularityItems
	}
	if o.BatchQueries == 0 {
		o.BatchQueries = DefaultBatchQueries
	}
}

// initEnvironments resolves the use cases this replica serves and sets up
// their caches and the replica's load limiter, history and availability.
func (r *Replica) initEnvironments() error {
	o := &r.opts
	if err := o.Load.Validate(); err != nil {
		return err
	}
	if err := checkScoring(o.Scoring); err != nil {
		return err
	}
	if o.Scoring == "" {
		o.Scoring = DefaultScoring
	}
	o.Load.ensureDefaults()
	r.limit = newLimiter(o.Load.MaxInFlight, o.Load.MaxQueue)
	r.scorer = newBatcher(o.Load.BatchQueries, runtime.GOMAXPROCS(0))
	r.scorer.passesDone = o.Metrics.GetOrCreateCounter("unirec_serve_scoring_passes_total")
	r.scorer.jobsDone = o.Metrics.GetOrCreateCounter("unirec_serve_scoring_queries_total")
	o.Metrics.GetOrCreateGauge("unirec_serve_in_flight", func() float64 { return float64(r.limit.inFlight()) })
	o.Metrics.GetOrCreateGauge("unirec_serve_queued", func() float64 { return float64(r.limit.queued()) })
	r.recent = NewHistory(o.Load.HistoryPerUser, o.Load.HistoryUsers)
	r.pop.bound(o.Load.PopularityItems, o.Metrics.GetOrCreateCounter("unirec_serve_popularity_evicted_total"))
	r.avail = NewAvailability()
	for name, ids := range o.CandidateSets {
		if len(ids) == 0 {
			return fmt.Errorf("serve.candidate_sets.%s is empty", name)
		}
	}
	for i := range o.UseCases {
		u := o.UseCases[i]
		if err := u.resolveEnvironment(o.CandidateSets); err != nil {
			return err
		}
		if err := u.resolve(o.Registry); err != nil {
			return err
		}
		if r.useCases[u.Name] != nil {
			return fmt.Errorf("serve.use_cases: %q is defined twice", u.Name)
		}
		r.useCases[u.Name] = &useCase{UseCase: u, cache: newResponseCache(u.Cache)}
	}
	for _, name := range o.Only {
		if r.useCases[name] == nil {
			return fmt.Errorf("--use-cases: %q is not a configured use case (known: %v)", name, r.useCaseNames())
		}
	}
	if len(o.Only) > 0 {
		for name := range r.useCases {
			if !slices.Contains(o.Only, name) {
				delete(r.useCases, name)
			}
		}
	}
	return nil
}
