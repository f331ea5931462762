package serve

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unirec/unirec/snapshot"
)

func recommend(t *testing.T, r *Replica, req *Request) *Response {
	t.Helper()
	resp, aerr := r.Recommend(context.Background(), req)
	if aerr != nil {
		t.Fatalf("%+v: %d %s", req, aerr.Status, aerr.Message)
	}
	return resp
}

func user(id string) map[string]string { return map[string]string{"user_id": id} }

func TestCandidateSources(t *testing.T) {
	items := catalog(10)
	items[9].typ, items[8].typ = "game", "game"
	r, _ := newTestReplica(t, ReplicaOptions{
		CandidateSets: map[string][]string{"kids": {"m-1", "m-2", "m-3"}},
		UseCases: []UseCase{{Name: "notifications"}, {Name: "kids", Canvas: "notifications", Environment: Environment{CandidateSet: "kids"}},
			{Name: "games", Canvas: "notifications", CandidateType: "game"}},
	}, items)
	f := func(use string, c *Candidates, k int, want ...string) {
		t.Helper()
		resp := recommend(t, r, &Request{UseCase: use, Context: user("u"), K: k, Candidates: c})
		if got := ids(resp.Items); !slices.Equal(got, want) || resp.Fallback.Used {
			t.Errorf("%s %+v: got %v (fallback %+v), want %v", use, c, got, resp.Fallback, want)
		}
	}
	f("notifications", nil, 3, "m-9", "m-8", "m-7")                                           // the whole catalog
	f("notifications", &Candidates{Type: "video"}, 2, "m-7", "m-6")                           // a type
	f("notifications", &Candidates{Type: "game"}, 5, "m-9", "m-8")                            // fewer than k
	f("notifications", &Candidates{Set: "kids"}, 5, "m-3", "m-2", "m-1")                      // a named set
	f("notifications", &Candidates{IDs: []string{"m-0", "m-5", "m-5", "x"}}, 5, "m-5", "m-0") // ids, once, unknown skipped
	f("kids", nil, 2, "m-3", "m-2")                                                           // the use case's default set
	f("games", nil, 1, "m-9")                                                                 // the use case's default type
	f("kids", &Candidates{Type: "video"}, 1, "m-7")                                           // a request overrides the default

	bad := func(c *Candidates, want string) {
		t.Helper()
		_, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user("u"), Candidates: c})
		if aerr == nil || aerr.Status != 400 || !strings.Contains(aerr.Message, want) {
			t.Errorf("%+v: got %v, want 400 naming %q", c, aerr, want)
		}
	}
	bad(&Candidates{Set: "nope"}, "candidates.set")
	bad(&Candidates{Type: "video", IDs: []string{"m-1"}}, "one of type, set or ids")
	bad(&Candidates{IDs: make([]string, maxCandidateIDs+1)}, "candidates.ids")
	_, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user("u"), TimeoutMS: 1 << 62})
	if aerr == nil || aerr.Status != 400 || !strings.Contains(aerr.Message, "timeout_ms") {
		t.Errorf("huge timeout_ms: %v, want 400 naming timeout_ms", aerr)
	}
	_, aerr = r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user("u"), Exclude: make([]string, maxExclude+1)})
	if aerr == nil || aerr.Status != 400 || !strings.Contains(aerr.Message, "exclude") {
		t.Errorf("too many exclusions: %v, want 400 naming exclude", aerr)
	}
}

func TestBusinessRules(t *testing.T) {
	items := catalog(10)
	for i := range items {
		items[i].cats = []string{[]string{"Drama", "Comedy"}[i%2]}
	}
	items[9].title, items[7].title = "Same", "Same"
	r, clock := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{
		{Name: "notifications"}, {Name: "related_items"},
		{Name: "local", Canvas: "notifications", Environment: Environment{Rules: Rules{CountryAvailability: true}}},
		{Name: "fresh", Canvas: "notifications", Environment: Environment{Rules: Rules{ExcludeRecent: time.Hour}}},
		{Name: "titles", Canvas: "notifications", Environment: Environment{Rules: Rules{Dedupe: DedupeTitle}}},
		{Name: "diverse", Canvas: "notifications", Environment: Environment{Rules: Rules{MaxPerCategory: 1}}},
	}}, items)
	f := func(req *Request, want ...string) {
		t.Helper()
		if req.K == 0 {
			req.K = 3
		}
		if got := ids(recommend(t, r, req).Items); !slices.Equal(got, want) {
			t.Errorf("%s %v: got %v, want %v", req.UseCase, req.Context, got, want)
		}
	}
	// Explicit exclusions and the source item.
	f(&Request{UseCase: "notifications", Context: user("u"), Exclude: []string{"m-9", "m-7"}}, "m-8", "m-6", "m-5")
	f(&Request{UseCase: "related_items", Context: map[string]string{"user_id": "u", "source_item_id": "m-9"}}, "m-8", "m-7", "m-6")
	// Country availability from the catalog.
	r.avail.ApplyCatalogRecord([]byte("m-9"), []byte(`{"type":"video","countries":["FR"]}`))
	r.avail.ApplyCatalogRecord([]byte("m-8"), []byte(`{"type":"video","countries":["US","FR"]}`))
	f(&Request{UseCase: "local", Context: map[string]string{"user_id": "u", "country": "US"}}, "m-8", "m-7", "m-6")
	f(&Request{UseCase: "local", Context: map[string]string{"user_id": "u", "country": "FR"}}, "m-9", "m-8", "m-7")
	f(&Request{UseCase: "notifications", Context: map[string]string{"user_id": "u", "country": "US"}}, "m-9", "m-8", "m-7")
	r.avail.ApplyCatalogRecord([]byte("m-9"), nil) // a tombstone lifts the restriction
	f(&Request{UseCase: "local", Context: map[string]string{"user_id": "u", "country": "US"}}, "m-9", "m-8", "m-7")
	// Recent engagements of the user, within the window.
	now := clock.Now()
	r.recent.Observe("u", "play", "m-9", now.Add(-time.Minute))
	r.recent.Observe("u", "click", "m-8", now.Add(-2*time.Hour))
	r.recent.Observe("u", "impression", "m-7", now)
	f(&Request{UseCase: "fresh", Context: user("u")}, "m-8", "m-7", "m-6")
	f(&Request{UseCase: "fresh", Context: user("v")}, "m-9", "m-8", "m-7")
	f(&Request{UseCase: "notifications", Context: user("u")}, "m-9", "m-8", "m-7")
	// De-duplication by title, and at most one item per category.
	f(&Request{UseCase: "titles", Context: user("u")}, "m-9", "m-8", "m-6")
	f(&Request{UseCase: "diverse", Context: user("u"), K: 5}, "m-9", "m-8")
	// Rules apply to fallback answers too (here after a timeout).
	clock.step = time.Second
	f(&Request{UseCase: "diverse", Context: user("u"), K: 5, Fallback: &FallbackOverride{Chain: []string{"static"}, Items: []string{"m-1", "m-3", "m-2", "m-1"}}}, "m-1", "m-2")
}

func TestFallbackChain(t *testing.T) {
	r, clock := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{
		{Name: "notifications", FallbackItems: []string{"s-1", "p-1", "s-2"}, Environment: Environment{FallbackChain: []string{"popularity", "static"}}},
		{Name: "strict", Canvas: "notifications", Environment: Environment{FallbackChain: []string{"none"}}},
	}}, nil)
	r.pop.Observe("notifications", "play", "p-1")
	r.pop.Observe("notifications", "play", "p-1")
	r.pop.Observe("notifications", "click", "p-2")
	r.pop.Observe("search", "click", "q-1")
	// No model: popularity of the canvas first, then the static list fills up to k, once each.
	resp := recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 4})
	if got := ids(resp.Items); !slices.Equal(got, []string{"p-1", "p-2", "s-1", "s-2"}) || resp.Fallback != (FallbackInfo{Used: true, Reason: "no_model", Source: "popularity"}) {
		t.Errorf("chain: got %v %+v", got, resp.Fallback)
	}
	// A request overrides the chain and its items.
	resp = recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 4, Fallback: &FallbackOverride{Chain: []string{"static"}, Items: []string{"x"}}})
	if got := ids(resp.Items); !slices.Equal(got, []string{"x"}) || resp.Fallback.Source != "static" {
		t.Errorf("override: got %v %+v", got, resp.Fallback)
	}
	// none: 503 instead of a fallback.
	for _, req := range []*Request{
		{UseCase: "strict", Context: user("u")},
		{UseCase: "notifications", Context: user("u"), Fallback: &FallbackOverride{Chain: []string{"none"}}},
	} {
		if _, aerr := r.Recommend(context.Background(), req); aerr == nil || aerr.Status != 503 {
			t.Errorf("%+v: got %v, want 503", req, aerr)
		}
	}
	_, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user("u"), Fallback: &FallbackOverride{Chain: []string{"magic"}}})
	if aerr == nil || aerr.Status != 400 || !strings.Contains(aerr.Message, "fallback.chain") {
		t.Errorf("unknown source: got %v", aerr)
	}
	_ = clock
}

// TestFallbackOnTimeout: when the deadline passes while the catalog is
// scored, the fallback answers instead of a late model answer.
func TestFallbackOnTimeout(t *testing.T) {
	r, clock := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{
		{Name: "notifications", Timeout: 50 * time.Millisecond, FallbackItems: []string{"s-1"}, Environment: Environment{FallbackChain: []string{"static"}}},
	}}, catalog(3*blockItems))
	resp := recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 2})
	if resp.Fallback.Used || resp.Items[0].ID != fmt.Sprintf("m-%d", 3*blockItems-1) {
		t.Fatalf("in time: got %+v", resp)
	}
	clock.step = 20 * time.Millisecond // every reading of the clock takes 20ms: the 3rd block is late
	resp = recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 2})
	if !resp.Fallback.Used || resp.Fallback.Reason != "timeout" || !slices.Equal(ids(resp.Items), []string{"s-1"}) || resp.Model.Version != 1 {
		t.Errorf("late: got %+v", resp)
	}
	// A generous per-request timeout_ms lets the model answer.
	resp = recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 2, TimeoutMS: 10000})
	if resp.Fallback.Used {
		t.Errorf("timeout_ms 10000: got %+v", resp.Fallback)
	}
}

// TestSlowSpellDoesNotStickToFallback: after ranking took longer than the
// budget, requests fall back at once, but only until the estimate decays
// below the budget; then the model answers again.
func TestSlowSpellDoesNotStickToFallback(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{{Name: "notifications", Timeout: 100 * time.Millisecond}}}, catalog(10))
	r.useCases["notifications"].observeScoring(8 * time.Second) // the estimate becomes 1s
	req := &Request{UseCase: "notifications", Context: user("u"), K: 2}
	if resp := recommend(t, r, req); resp.Fallback.Reason != "timeout" {
		t.Fatalf("right after the slow spell: %+v, want the fallback", resp.Fallback)
	}
	for i := 0; ; i++ {
		if !recommend(t, r, req).Fallback.Used {
			break
		}
		if i == 100 {
			t.Fatal("the model never answered again")
		}
	}
}

// TestCacheIsKeyedAndInvalidated: a use case with a cache answers a
// repeated request from it until the TTL passes or the version changes;
// other contexts, candidates or k miss.
func TestCacheIsKeyedAndInvalidated(t *testing.T) {
	items := catalog(10)
	r, clock := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{
		{Name: "notifications", Environment: Environment{Cache: CacheConfig{TTL: time.Minute}}},
		{Name: "nocache", Canvas: "notifications"},
	}}, items)
	req := func(use, u string, k int) *Request { return &Request{UseCase: use, Context: user(u), K: k} }
	f := func(rq *Request, cached bool, version int64, first string) {
		t.Helper()
		resp := recommend(t, r, rq)
		if resp.Cached != cached || resp.Model.Version != version || resp.Items[0].ID != first {
			t.Errorf("%s %v k=%d: cached %v version %d first %s, want %v %d %s", rq.UseCase, rq.Context, rq.K, resp.Cached, resp.Model.Version, resp.Items[0].ID, cached, version, first)
		}
	}
	f(req("notifications", "u", 3), false, 1, "m-9")
	f(req("notifications", "u", 3), true, 1, "m-9")
	f(req("notifications", "v", 3), false, 1, "m-9")
	f(req("notifications", "u", 2), false, 1, "m-9")
	f(req("nocache", "u", 3), false, 1, "m-9")
	f(req("nocache", "u", 3), false, 1, "m-9")
	clock.Advance(time.Minute)
	f(req("notifications", "u", 3), false, 1, "m-9") // expired
	f(req("notifications", "u", 3), true, 1, "m-9")
	// Version 2 makes m-0 the best: the cache must not answer version 1's list.
	next := slices.Clone(items)
	next[0].score = 5
	if err := r.Apply(snapshot.UpdateOf(testCapture(t, 1, items), testCapture(t, 2, next))); err != nil {
		t.Fatal(err)
	}
	f(req("notifications", "u", 3), false, 2, "m-0")
	f(req("notifications", "u", 3), true, 2, "m-0")
	if n := len(r.useCases["notifications"].cache.entries); n != 1 {
		t.Errorf("after the version change the cache holds %d entries, want 1", n)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newResponseCache(CacheConfig{TTL: time.Minute, MaxEntries: 2})
	c.get("", 1, testEpoch)
	for _, k := range []string{"a", "b", "c"} {
		c.put(k, 1, &Response{Items: []Item{{ID: k}}}, testEpoch)
	}
	if got, _ := c.get("a", 1, testEpoch); got != nil {
		t.Errorf("the oldest entry survived: %+v", got)
	}
	if got, _ := c.get("c", 1, testEpoch); got == nil || got.Items[0].ID != "c" {
		t.Errorf("the newest entry: %+v", got)
	}
}

// TestParallelismAnswersTheSame: the shards of a use case with
// parallelism 4 give the same answer as one.
func TestParallelismAnswersTheSame(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{
		{Name: "notifications"},
		{Name: "wide", Canvas: "notifications", Environment: Environment{Parallelism: 4}},
	}}, catalog(5*blockItems))
	a := recommend(t, r, &Request{UseCase: "notifications", Context: user("u"), K: 50})
	b := recommend(t, r, &Request{UseCase: "wide", Context: user("u"), K: 50})
	if !slices.Equal(ids(a.Items), ids(b.Items)) || a.Items[0].ID != fmt.Sprintf("m-%d", 5*blockItems-1) {
		t.Errorf("parallelism 1: %v\nparallelism 4: %v", ids(a.Items), ids(b.Items))
	}
}

func TestServesASubsetOfUseCases(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{Only: []string{"search"}}, nil)
	if got := r.useCaseNames(); !slices.Equal(got, []string{"search"}) {
		t.Errorf("use cases: %v", got)
	}
	_, aerr := r.Recommend(context.Background(), &Request{UseCase: "notifications", Context: user("u")})
	if aerr == nil || aerr.Status != 404 {
		t.Errorf("a use case not served here: %v, want 404", aerr)
	}
}

func TestEnvironmentErrorsNameTheField(t *testing.T) {
	f := func(opts ReplicaOptions, want string) {
		t.Helper()
		reg := testReplica(t).opts.Registry
		opts.Registry = reg
		_, err := NewReplica(opts)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %q", err, want)
		}
	}
	uc := func(e Environment) ReplicaOptions {
		return ReplicaOptions{UseCases: []UseCase{{Name: "search", Environment: e}}}
	}
	f(uc(Environment{Parallelism: 100}), "serve.use_cases[search].parallelism")
	f(uc(Environment{CandidateSet: "x"}), "serve.use_cases[search].candidate_set")
	f(uc(Environment{FallbackChain: []string{"static"}}), "serve.use_cases[search].fallback_chain")
	f(uc(Environment{FallbackChain: []string{"popularity", "popularity"}}), "fallback_chain")
	f(uc(Environment{FallbackChain: []string{"none", "static"}}), "fallback_chain")
	f(uc(Environment{Cache: CacheConfig{TTL: -1}}), "cache.ttl")
	f(uc(Environment{Rules: Rules{Dedupe: "colour"}}), "rules.dedupe")
	f(uc(Environment{Rules: Rules{MaxPerCategory: -1}}), "rules.max_per_category")
	f(uc(Environment{Rules: Rules{ExcludeRecent: -1}}), "rules.exclude_recent")
	f(ReplicaOptions{UseCases: []UseCase{{Name: "search", Fallback: "static", FallbackItems: []string{"a"}, Environment: Environment{FallbackChain: []string{"static"}}}}}, "fallback and fallback_chain")
	f(ReplicaOptions{Only: []string{"nope"}}, "--use-cases")
	f(ReplicaOptions{CandidateSets: map[string][]string{"e": nil}}, "serve.candidate_sets.e")
	f(ReplicaOptions{Load: LoadOptions{MaxQueue: -1}}, "serve.load.max_queue")
}

func TestHistoryIsBounded(t *testing.T) {
	h := NewHistory(2, 2)
	for i, it := range []string{"a", "b", "c"} {
		h.Observe("u", "play", it, testEpoch.Add(time.Duration(i)*time.Second))
	}
	if got := h.Since("u", testEpoch); len(got) != 2 || got["a"] {
		t.Errorf("per user: %v, want the newest two", got)
	}
	if got := h.Since("u", testEpoch.Add(2*time.Second)); len(got) != 1 || !got["c"] {
		t.Errorf("since: %v", got)
	}
	h.Observe("v", "play", "x", testEpoch)
	h.Observe("w", "play", "x", testEpoch)
	if len(h.Since("u", testEpoch)) != 0 || len(h.Since("w", testEpoch)) != 1 {
		t.Errorf("users: the first user seen must be forgotten first")
	}
}

func TestPopularityRanksAsItCounts(t *testing.T) {
	p := NewPopularity()
	for _, it := range []string{"b", "a", "c", "c", "a", "c", "d"} {
		p.Observe("x", "play", it)
	}
	p.Observe("x", "impression", "d")
	p.Observe("x", "dismiss", "d")
	got := p.Top("x", 10, nil)
	if len(got) != 4 || got[0] != (Item{"c", 3}) || got[1] != (Item{"a", 2}) || got[2].Score != 1 || got[3].Score != 1 {
		t.Errorf("got %v, want c:3 a:2 then b and d with 1", got)
	}
	if got := ids(p.Top("unknown", 2, func(id string) bool { return id != "c" })); !slices.Equal(got, []string{"a", ids(p.Top("x", 3, nil))[2]}) {
		t.Errorf("all canvases, filtered: %v", got)
	}
}

// TestPopularityMatchesCounting: after random engagements the ranking is
// ordered by count and every count is right.
func TestPopularityMatchesCounting(t *testing.T) {
	p := NewPopularity()
	want := map[string]float64{}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		id := strconv.Itoa(int(rng.ExpFloat64() * 50))
		p.Observe("x", "click", id)
		want[id]++
	}
	got := p.Top("x", len(want)+1, nil)
	if len(got) != len(want) {
		t.Fatalf("%d items, want %d", len(got), len(want))
	}
	for i, it := range got {
		if it.Score != want[it.ID] || (i > 0 && it.Score > got[i-1].Score) {
			t.Fatalf("rank %d: %v (count %v), previous %v", i, it, want[it.ID], got[max(i-1, 0)])
		}
	}
}

// The kernel's item check answers what the rules answer for every item,
// by index, whichever rules apply; with none, it checks nothing.
func TestAllowIndexAgreesWithTheRules(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{{Name: "notifications"}}}, catalog(10))
	m := r.Model()
	r.avail.ApplyCatalogRecord([]byte("m-4"), []byte(`{"type":"video","countries":["FR"]}`))
	for _, c := range []struct {
		name    string
		exclude map[string]bool
		country string
		typ     string
	}{
		{name: "no rules"},
		{name: "exclusions", exclude: map[string]bool{"m-2": true, "m-7": true, "not-in-the-model": true, "m-3": false}},
		{name: "only ids the model lacks", exclude: map[string]bool{"gone": true}},
		{name: "exclusions and a country", exclude: map[string]bool{"m-2": true}, country: "US"},
		{name: "a type no item has", typ: "article"},
	} {
		rs := &ruleSet{exclude: c.exclude, country: c.country, avail: r.avail}
		allow := rs.allowIndex(m, c.typ)
		if allow == nil {
			if c.typ != "" || c.country != "" || c.name == "exclusions" {
				t.Errorf("%s: no check", c.name)
			}
			continue
		}
		for i := range m.items {
			want := (c.typ == "" || m.items[i].Meta.Type == c.typ) && rs.allowed(m.items[i].ID)
			if got := allow(i); got != want {
				t.Errorf("%s: item %s allowed %v, the rules say %v", c.name, m.items[i].ID, got, want)
			}
		}
	}
}
