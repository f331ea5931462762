package serve

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Limits of a request, beyond a use case's max_k.
const (
	maxCandidateIDs = 10000
	maxExclude      = 10000
	maxBatch        = 64
	maxTimeoutMS    = 60000
)

// plan is a request resolved against its use case: what to rank, under
// which rules, until when, and what falls back.
type plan struct {
	u        *useCase
	req      *Request
	k        int
	typ      string   // candidate type ("" any)
	ids      []string // explicit candidates (nil: the catalog)
	rules    *ruleSet
	chain    []string
	static   []string
	deadline time.Time
	// ctx is the request's: ranking stops when it ends (the client left).
	ctx context.Context
}

// newPlan resolves req (already checked by check) at now.
func (r *Replica) newPlan(u *useCase, req *Request, now time.Time) (*plan, *APIError) {
	p := &plan{u: u, req: req, k: cmp.Or(req.K, u.DefaultK), typ: u.CandidateType,
		chain: u.FallbackChain, static: u.FallbackItems, ctx: context.Background()}
	if req.TimeoutMS > maxTimeoutMS {
		return nil, badRequest("timeout_ms must be at most %d, got %d", maxTimeoutMS, req.TimeoutMS)
	}
	timeout := u.Timeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	p.deadline = now.Add(timeout)
	set := u.CandidateSet
	if c := req.Candidates; c != nil {
		n := 0
		for _, given := range []bool{c.Type != "", c.Set != "", c.IDs != nil} {
			if given {
				n++
			}
		}
		if n > 1 {
			return nil, badRequest("candidates: give one of type, set or ids")
		}
		if len(c.IDs) > maxCandidateIDs {
			return nil, badRequest("candidates.ids: at most %d ids, got %d", maxCandidateIDs, len(c.IDs))
		}
		switch {
		case c.Type != "":
			p.typ, set = c.Type, ""
		case c.Set != "":
			if _, ok := r.opts.CandidateSets[c.Set]; !ok {
				return nil, badRequest("candidates.set %q is not configured (serve.candidate_sets)", c.Set)
			}
			set = c.Set
		case c.IDs != nil:
			p.ids, set = c.IDs, ""
		}
	}
	if set != "" {
		p.ids, p.typ = r.opts.CandidateSets[set], ""
	}
	if f := req.Fallback; f != nil {
		if len(f.Chain) > 0 {
			p.chain = f.Chain
		}
		if len(f.Items) > 0 {
			p.static = f.Items
		}
		if err := checkChain(p.chain, p.static); err != nil {
			return nil, badRequest("fallback.chain: %v", err)
		}
	}
	if len(req.Exclude) > maxExclude {
		return nil, badRequest("exclude: at most %d ids, got %d", maxExclude, len(req.Exclude))
	}
	p.rules = r.newRuleSet(u, req, now)
	return p, nil
}

// expired reports whether p's deadline has passed by the replica's clock,
// or its request ended (the client left: ranking for it is wasted).
func (r *Replica) expired(p *plan) func() bool {
	return func() bool { return p.ctx.Err() != nil || !r.opts.Now().Before(p.deadline) }
}

// errClientGone answers a request whose client left while it was ranked
// (status 499, nginx's "client closed request"; nobody reads it).
var errClientGone = &APIError{Status: 499, Message: "the client closed the request"}

// rankModel ranks p's candidates with m. It fails with errDeadline when
// the deadline passes while scoring, or when the use case's recent scoring
// time says it would; each such refusal shrinks the estimate by an eighth,
// so one slow spell cannot keep the model from answering for good.
func (r *Replica) rankModel(p *plan, m *Model) ([]Item, error) {
	start := r.opts.Now()
	if est := p.u.scoreEstimate.Load(); est > 0 && start.Add(time.Duration(est)).After(p.deadline) {
		p.u.scoreEstimate.Store(est - est/8)
		return nil, errDeadline
	}
	cv, bias, boosts := r.contextVector(m, p)
	spec := &scoreSpec{mat: m.matrix(p.u.Canvas), cv: cv, bias: bias, boosts: boosts, shards: p.u.Parallelism, expired: r.expired(p)}
	if p.ids != nil {
		spec.idx = candidateIndexes(m, p.ids)
	} else {
		spec.quant = m.quantized(p.u.Canvas)
	}
	spec.allow = p.rules.allowIndex(m, p.typ)
	fetch := p.k
	if p.rules.thins() {
		fetch = 4 * p.k
	}
	for {
		spec.k = fetch
		top, err := r.rank(spec)
		if err != nil {
			return nil, err
		}
		a := p.rules.newAnswer(p.k)
		touchItems(m, top)
		for _, s := range top {
			it := &m.items[s.idx]
			a.addRanked(Item{ID: it.ID, Score: float64(model.Sigmoid(s.logit))}, &it.Meta)
		}
		if a.full() || len(top) < fetch {
			p.u.observeScoring(r.opts.Now().Sub(start))
			return a.items, nil
		}
		fetch *= 4
	}
}

// touchItems reads the ranked items' entries of the item table, then the
// first byte of each one's id, each pass before anything uses them: they
// lie anywhere in memory and these loads do not depend on one another, so
// their cache misses overlap instead of following one another in the
// answer and its encoding.
func touchItems(m *Model, top []scored) {
	n := 0
	for _, s := range top {
		n += len(m.items[s.idx].ID)
	}
	var b byte
	for _, s := range top {
		if id := m.items[s.idx].ID; id != "" {
			b += id[0]
		}
	}
	runtime.KeepAlive(n + int(b))
}

// rank ranks spec: a whole-catalog ranking in a pass shared with the
// concurrent ones (batcher.go), unless batching is off; explicit
// candidates alone.
func (r *Replica) rank(spec *scoreSpec) ([]scored, error) {
	if spec.idx != nil || r.scorer.max == 1 {
		return rankTop(spec)
	}
	return r.scorer.rank(spec)
}

// observeScoring updates the use case's moving estimate of scoring time.
func (u *useCase) observeScoring(d time.Duration) {
	old := u.scoreEstimate.Load()
	u.scoreEstimate.Store(old - old/8 + int64(d)/8)
}

// candidateIndexes maps ids to item indexes, once each, skipping unknown
// ids.
func candidateIndexes(m *Model, ids []string) []int {
	out := make([]int, 0, len(ids))
	seen := make(map[int]bool, len(ids))
	for _, id := range ids {
		if i, ok := m.index[id]; ok && !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// contextVector computes the task-conditioned context vector of p's
// request, the context side's bias and the memory boosts of its context.
func (r *Replica) contextVector(m *Model, p *plan) ([]float32, float32, []boost) {
	canvas := p.u.Canvas
	ex := r.opts.Registry.Normalize(&ingest.Event{Canvas: canvas, Context: p.req.Context})
	t := r.opts.Now()
	if ts := p.req.Context["time"]; ts != "" {
		t, _ = time.Parse(time.RFC3339Nano, ts)
	}
	ids := m.feat.Context(nil, canvas, ex.Context, t)
	rows := make([][]float32, len(ids))
	for i, id := range ids {
		rows[i] = m.rows.get(id)
	}
	tp, ok := m.tasks[canvas]
	if !ok {
		tp = *model.NewTaskParams(m.Config.Dim)
	}
	cv := make([]float32, m.Config.Dim)
	bias := model.ContextVector(cv, nil, &tp, rows)
	return cv, bias, m.boosts(canvas, ex.Context, &tp, t)
}

// fallback answers p from its fallback chain: each source adds items (that
// the rules allow, among the explicit candidates if any) until k. m, when
// not nil, gives item metadata and popularity before the events stream has
// any.
func (r *Replica) fallback(resp *Response, p *plan, m *Model, reason string) *APIError {
	u := p.u
	r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_fallback_total{use_case=%q,reason=%q}`, u.Name, reason)).Inc()
	if p.chain[0] == SourceNone {
		return &APIError{Status: http.StatusServiceUnavailable,
			Message: fmt.Sprintf("the model cannot answer use case %q (%s) and its fallback is none", u.Name, reason)}
	}
	resp.Fallback = FallbackInfo{Used: true, Reason: reason}
	keep := func(string) bool { return true }
	if p.ids != nil {
		in := make(map[string]bool, len(p.ids))
		for _, id := range p.ids {
			in[id] = true
		}
		keep = func(id string) bool { return in[id] }
	}
	meta := func(id string) *stream.ItemMeta {
		if m == nil {
			return nil
		}
		if i, ok := m.index[id]; ok {
			return &m.items[i].Meta
		}
		return nil
	}
	a := p.rules.newAnswer(p.k)
	for _, src := range p.chain {
		n := len(a.items)
		for _, it := range r.fallbackItems(src, p, m, keep) {
			a.add(it, meta(it.ID))
		}
		if resp.Fallback.Source == "" && len(a.items) > n {
			resp.Fallback.Source = src
		}
	}
	if resp.Fallback.Source == "" {
		resp.Fallback.Source = p.chain[0]
	}
	resp.Items = a.items
	return nil
}

// fallbackItems lists the items source offers for p, best first.
func (r *Replica) fallbackItems(source string, p *plan, m *Model, keep func(string) bool) []Item {
	want := 4*p.k + len(p.rules.exclude)
	switch source {
	case FallbackStatic:
		out := make([]Item, 0, len(p.static))
		for _, id := range p.static {
			if keep(id) {
				out = append(out, Item{ID: id})
			}
		}
		return out
	case FallbackPopularity:
		if items := r.pop.Top(p.u.Canvas, want, keep); len(items) > 0 || m == nil {
			return items
		}
		var out []Item
		for _, it := range m.popular[p.u.Canvas] {
			if keep(it.Item) {
				out = append(out, Item{ID: it.Item, Score: it.Score})
			}
		}
		return out
	}
	return nil
}

// answerWithModel answers p with m: from the use case's cache when it has
// this answer for m's version, else by ranking (and caching the answer),
// or from the fallback when the deadline does not leave time to rank.
func (r *Replica) answerWithModel(resp *Response, p *plan, m *Model) *APIError {
	u := p.u
	var key string
	if u.cache != nil {
		key = cacheKey(p.req, p.k)
		hit, invalidated := u.cache.get(key, m.Version, r.opts.Now())
		if invalidated {
			r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_cache_invalidations_total{use_case=%q}`, u.Name)).Inc()
		}
		if hit != nil {
			r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_cache_hits_total{use_case=%q}`, u.Name)).Inc()
			resp.Items, resp.Cached = hit.Items, true
			return nil
		}
	}
	items, err := r.rankModel(p, m)
	if err != nil && p.ctx.Err() != nil {
		return errClientGone
	}
	if err != nil {
		return r.fallback(resp, p, m, "timeout")
	}
	resp.Items = items
	if u.cache != nil {
		u.cache.put(key, m.Version, resp, r.opts.Now())
	}
	return nil
}
