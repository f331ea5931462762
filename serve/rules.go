package serve

import (
	"time"

	"github.com/unirec/unirec/stream"
)

// ruleSet is a request's business rules, resolved: what may never be
// answered (exclusions, recent engagements, items unavailable in the
// request's country) and how answers are thinned (de-duplication, at most
// N items per category).
type ruleSet struct {
	exclude map[string]bool
	country string // "" when availability is not checked
	avail   *Availability
	rules   Rules
}

// newRuleSet resolves u's rules for req at now.
func (r *Replica) newRuleSet(u *useCase, req *Request, now time.Time) *ruleSet {
	rs := &ruleSet{exclude: map[string]bool{}, avail: r.avail, rules: u.Rules}
	if u.Rules.ExcludeRecent > 0 && req.Context["user_id"] != "" {
		rs.exclude = r.recent.Since(req.Context["user_id"], now.Add(-u.Rules.ExcludeRecent))
	}
	for _, id := range req.Exclude {
		rs.exclude[id] = true
	}
	if src := req.Context["source_item_id"]; src != "" {
		rs.exclude[src] = true
	}
	if u.Rules.CountryAvailability {
		rs.country = req.Context["country"]
	}
	return rs
}

// allowIndex returns the check, by item index in m, of the items of type
// typ ("": any) that may be answered at all; nil when every item may. When
// only exclusions apply it looks the excluded items' indexes up once and
// never reads m's item table, whose entries are cache misses when the
// kernel asks about thousands of items per request (a tenth of a loaded
// replica's CPU).
func (rs *ruleSet) allowIndex(m *Model, typ string) func(i int) bool {
	if typ != "" || rs.country != "" {
		return func(i int) bool {
			it := &m.items[i]
			return (typ == "" || it.Meta.Type == typ) && rs.allowed(it.ID)
		}
	}
	excluded := make(map[int]struct{}, len(rs.exclude))
	for id, ex := range rs.exclude {
		if i, ok := m.index[id]; ok && ex {
			excluded[i] = struct{}{}
		}
	}
	if len(excluded) == 0 {
		return nil
	}
	return func(i int) bool {
		_, no := excluded[i]
		return !no
	}
}

// allowed reports whether id may be answered at all.
func (rs *ruleSet) allowed(id string) bool {
	if rs.exclude[id] {
		return false
	}
	return rs.country == "" || rs.avail.Available(id, rs.country)
}

// thins reports whether the rules may drop ranked items after ranking
// (so ranking must fetch more than k).
func (rs *ruleSet) thins() bool {
	return rs.rules.Dedupe == DedupeTitle || rs.rules.MaxPerCategory > 0
}

// answer collects up to k items in order, de-duplicated and diversified.
type answer struct {
	rs     *ruleSet
	k      int
	items  []Item
	ids    map[string]bool // the ids added; nil for a ranked answer
	titles map[string]bool // nil unless the rules dedupe by title
	perCat map[string]int  // nil unless the rules cap items per category
}

func (rs *ruleSet) newAnswer(k int) *answer {
	a := &answer{rs: rs, k: k, items: make([]Item, 0, k)}
	if rs.rules.Dedupe == DedupeTitle {
		a.titles = make(map[string]bool, k)
	}
	if rs.rules.MaxPerCategory > 0 {
		a.perCat = map[string]int{}
	}
	return a
}

func (a *answer) full() bool { return len(a.items) >= a.k }

// add appends it (with its metadata, if known) unless a rule drops it:
// an item already answered, one the request may not be answered, or one
// the answer's thinning drops.
func (a *answer) add(it Item, meta *stream.ItemMeta) bool {
	if a.ids == nil {
		a.ids = make(map[string]bool, a.k)
	}
	if a.full() || a.ids[it.ID] || !a.rs.allowed(it.ID) || !a.addRanked(it, meta) {
		return false
	}
	a.ids[it.ID] = true
	return true
}

// addRanked appends an item of a ranking unless the answer's thinning
// drops it. A ranking offers each item once and only the items its allow
// check (allowIndex) passed, so the checks of add would be spent twice:
// 20 us of a 100-item answer.
func (a *answer) addRanked(it Item, meta *stream.ItemMeta) bool {
	if a.full() {
		return false
	}
	if a.titles == nil && a.perCat == nil { // meta is a cache miss: read it only for a rule
		a.items = append(a.items, it)
		return true
	}
	var title, cat string
	if meta != nil {
		title = meta.Title
		if len(meta.Categories) > 0 {
			cat = meta.Categories[0]
		}
	}
	if a.titles != nil && title != "" && a.titles[title] {
		return false
	}
	if max := a.rs.rules.MaxPerCategory; a.perCat != nil && cat != "" && a.perCat[cat] >= max {
		return false
	}
	if a.titles != nil && title != "" {
		a.titles[title] = true
	}
	if a.perCat != nil && cat != "" {
		a.perCat[cat]++
	}
	a.items = append(a.items, it)
	return true
}
