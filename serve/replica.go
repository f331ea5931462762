package serve

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/snapshot"
)

// ReplicaOptions configures a Replica.
type ReplicaOptions struct {
	Registry *ingest.Registry
	// UseCases served by this replica; empty serves one per canvas.
	UseCases []UseCase
	Now      func() time.Time
	Metrics  *metrics.Set
	Logf     func(format string, args ...any)
}

// Replica is one serving replica.
type Replica struct {
	opts     ReplicaOptions
	useCases map[string]*UseCase
	model    atomic.Pointer[Model]
	pop      *Popularity

	versionG, stalenessG *metrics.Gauge
}

// NewReplica validates the use cases and returns a replica without a model.
func NewReplica(opts ReplicaOptions) (*Replica, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	if len(opts.UseCases) == 0 {
		opts.UseCases = DefaultUseCases(opts.Registry)
	}
	r := &Replica{opts: opts, useCases: map[string]*UseCase{}, pop: NewPopularity()}
	for i := range opts.UseCases {
		u := opts.UseCases[i]
		if err := u.resolve(opts.Registry); err != nil {
			return nil, err
		}
		if r.useCases[u.Name] != nil {
			return nil, fmt.Errorf("serve.use_cases: %q is defined twice", u.Name)
		}
		r.useCases[u.Name] = &u
	}
	for name := range r.useCases { // exported from the start, so dashboards show zeros, not gaps
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_requests_total{use_case=%q,code="200"}`, name))
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_fallback_total{use_case=%q,reason="no_model"}`, name))
		opts.Metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf("unirec_serve_request_seconds{use_case=%q}", name))
	}
	r.versionG = opts.Metrics.GetOrCreateGauge("unirec_serve_model_version", nil)
	r.stalenessG = opts.Metrics.GetOrCreateGauge("unirec_serve_model_staleness_seconds", func() float64 {
		m := r.model.Load()
		if m == nil {
			return 0
		}
		return max(r.opts.Now().Sub(m.Watermark), 0).Seconds()
	})
	return r, nil
}

// Popularity returns the replica's event-stream popularity counter.
func (r *Replica) Popularity() *Popularity { return r.pop }

// Apply swaps in a new model version; requests in flight finish on the
// version they started with.
func (r *Replica) Apply(m *snapshot.Manifest, c *online.Capture) {
	if cur := r.model.Load(); cur != nil && cur.Version >= m.Version {
		if r.opts.Logf != nil {
			r.opts.Logf("serve: ignoring snapshot version %d, serving %d", m.Version, cur.Version)
		}
		return
	}
	r.model.Store(NewModel(m, c))
	r.versionG.Set(float64(m.Version))
}

// Model returns the model being served, or nil.
func (r *Replica) Model() *Model { return r.model.Load() }

// Recommend answers one request.
func (r *Replica) Recommend(ctx context.Context, req *Request) (*Response, *APIError) {
	start := time.Now()
	u, aerr := r.check(req)
	if aerr != nil {
		r.count(req.UseCase, aerr.Status)
		return nil, aerr
	}
	k := req.K
	if k == 0 {
		k = u.DefaultK
	}
	exclude := map[string]bool{}
	for _, id := range req.Exclude {
		exclude[id] = true
	}
	if src := req.Context["source_item_id"]; src != "" {
		exclude[src] = true
	}
	resp := &Response{Items: []Item{}}
	m := r.model.Load()
	if m == nil {
		resp.Items = r.pop.Top(u.Canvas, k, exclude)
		resp.Fallback = FallbackInfo{Used: true, Reason: "no_model", Source: "popularity"}
		r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_fallback_total{use_case=%q,reason="no_model"}`, u.Name)).Inc()
	} else {
		now := r.opts.Now()
		stale := max(now.Sub(m.Watermark), 0)
		resp.Model = ModelInfo{Version: m.Version, Watermark: m.Watermark.UTC().Format(time.RFC3339Nano),
			StalenessMS: stale.Milliseconds(), Stale: u.MaxStaleness > 0 && stale > u.MaxStaleness}
		resp.Items = r.rank(m, u, req, k, exclude, now)
	}
	resp.Timing.TotalUS = time.Since(start).Microseconds()
	r.opts.Metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf("unirec_serve_request_seconds{use_case=%q}", u.Name)).UpdateDuration(start)
	r.count(u.Name, http.StatusOK)
	return resp, nil
}

func (r *Replica) count(useCase string, status int) {
	if r.useCases[useCase] == nil {
		useCase = "unknown"
	}
	r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf("unirec_serve_requests_total{use_case=%q,code=\"%d\"}", useCase, status)).Inc()
}

// check validates a request against its use case.
func (r *Replica) check(req *Request) (*UseCase, *APIError) {
	if req.UseCase == "" {
		return nil, badRequest("use_case is required (known: %v)", r.useCaseNames())
	}
	u := r.useCases[req.UseCase]
	if u == nil {
		return nil, badRequest("use_case %q is not served here (known: %v)", req.UseCase, r.useCaseNames())
	}
	if req.K < 0 || req.K > u.MaxK {
		return nil, badRequest("k must be between 1 and %d, got %d", u.MaxK, req.K)
	}
	if req.TimeoutMS < 0 {
		return nil, badRequest("timeout_ms must not be negative")
	}
	for _, f := range u.required {
		if req.Context[f] == "" {
			return nil, badRequest("context.%s is required for use case %q", f, u.Name)
		}
	}
	if t := req.Context["time"]; t != "" {
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return nil, badRequest("context.time must be RFC 3339: %v", err)
		}
	}
	return u, nil
}

func (r *Replica) useCaseNames() []string {
	names := make([]string, 0, len(r.useCases))
	for n := range r.useCases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// rank scores the candidates with the model and returns the top k.
func (r *Replica) rank(m *Model, u *UseCase, req *Request, k int, exclude map[string]bool, now time.Time) []Item {
	ev := &ingest.Event{Canvas: u.Canvas, Context: req.Context}
	ex := r.opts.Registry.Normalize(ev)
	t := now
	if ts := req.Context["time"]; ts != "" {
		t, _ = time.Parse(time.RFC3339Nano, ts)
	}
	ids := m.feat.Context(nil, u.Canvas, ex.Context, t)
	rows := make([][]float32, len(ids))
	for i, id := range ids {
		rows[i] = m.rows[id]
	}
	tp, ok := m.tasks[u.Canvas]
	if !ok {
		tp = *online.NewTaskParams(m.Config.Dim)
	}
	cv := make([]float32, m.Config.Dim)
	bias := online.ContextVector(cv, nil, &tp, rows)
	mat := m.matrix(u.Canvas)
	d := m.Config.Dim + 1
	top := &topK{k: k}
	typ := u.CandidateType
	if req.Candidates != nil && req.Candidates.Type != "" {
		typ = req.Candidates.Type
	}
	consider := func(i int) {
		it := m.items[i]
		if exclude[it.ID] || (typ != "" && it.Meta.Type != typ) {
			return
		}
		top.offer(scored{idx: i, logit: online.Logit(cv, bias, mat[i*d:(i+1)*d])})
	}
	if req.Candidates != nil && len(req.Candidates.IDs) > 0 {
		for _, id := range req.Candidates.IDs {
			if i, ok := m.index[id]; ok {
				consider(i)
			}
		}
	} else {
		for i := range m.items {
			consider(i)
		}
	}
	out := make([]Item, 0, k)
	for _, s := range top.sorted() {
		out = append(out, Item{ID: m.items[s.idx].ID, Score: float64(online.Sigmoid(s.logit))})
	}
	return out
}
