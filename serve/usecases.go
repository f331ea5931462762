package serve

import (
	"net/http"
	"slices"
)

// UseCaseView is the effective policy of one use case, as GET
// /v1/use-cases shows it: the config with every default filled in.
type UseCaseView struct {
	Name            string   `json:"name"`
	Canvas          string   `json:"canvas"`
	RequiredContext []string `json:"required_context"`
	DefaultK        int      `json:"default_k"`
	MaxK            int      `json:"max_k"`
	TimeoutMS       int64    `json:"timeout_ms"`
	FreshnessPolicy
	CandidateType   string   `json:"candidate_type,omitempty"`
	CandidateSet    string   `json:"candidate_set,omitempty"`
	Parallelism     int      `json:"parallelism"`
	FallbackChain   []string `json:"fallback_chain"`
	FallbackItems   []string `json:"fallback_items,omitempty"`
	CacheTTL        string   `json:"cache_ttl,omitempty"`
	CacheMaxEntries int      `json:"cache_max_entries"`
	Rules           struct {
		CountryAvailability bool   `json:"country_availability"`
		ExcludeRecent       string `json:"exclude_recent,omitempty"`
		Dedupe              string `json:"dedupe"`
		MaxPerCategory      int    `json:"max_per_category"`
	} `json:"rules"`
}

// UseCases returns the effective policy of every use case the replica
// serves, by name.
func (r *Replica) UseCases() []UseCaseView {
	out := make([]UseCaseView, 0, len(r.useCases))
	for _, name := range r.useCaseNames() {
		u := r.useCases[name]
		v := UseCaseView{Name: u.Name, Canvas: u.Canvas, RequiredContext: slices.Clone(u.required), DefaultK: u.DefaultK,
			MaxK: u.MaxK, TimeoutMS: u.Timeout.Milliseconds(), FreshnessPolicy: freshnessPolicy(u.UseCase),
			CandidateType: u.CandidateType, CandidateSet: u.CandidateSet, Parallelism: u.Parallelism,
			FallbackChain: u.FallbackChain, FallbackItems: u.FallbackItems, CacheMaxEntries: u.Cache.MaxEntries}
		if v.RequiredContext == nil {
			v.RequiredContext = []string{}
		}
		v.CacheTTL = durationOrEmpty(u.Cache.TTL.String(), u.Cache.TTL != 0)
		v.Rules.CountryAvailability = u.Rules.CountryAvailability
		v.Rules.ExcludeRecent = durationOrEmpty(u.Rules.ExcludeRecent.String(), u.Rules.ExcludeRecent != 0)
		v.Rules.Dedupe, v.Rules.MaxPerCategory = u.Rules.Dedupe, u.Rules.MaxPerCategory
		out = append(out, v)
	}
	return out
}

func durationOrEmpty(s string, set bool) string {
	if !set {
		return ""
	}
	return s
}

func (r *Replica) serveUseCases(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"use_cases": r.UseCases()})
}
