package serve

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/snapshot"
)

// ReplicaOptions configures a Replica.
type ReplicaOptions struct {
	Registry *ingest.Registry
	// UseCases served by this replica; empty serves one per canvas.
	UseCases []UseCase
	// Checks run on every version before it goes live.
	Checks Checks
	// KeepVersions is how many recent versions stay available for
	// rollback.
	KeepVersions int
	// StateFile, when set, keeps a rollback across restarts: a rollback
	// writes it, resume removes it, and a replica that finds it holds the
	// version it names as soon as it has rebuilt it (RestoreFrom says
	// where to read the snapshots topic from).
	StateFile string
	// AdminToken enables the admin endpoints (rollback, resume) for
	// requests bearing it; empty disables them.
	AdminToken []byte
	// APIToken, when set, is required ("Authorization: Bearer") by the
	// recommend, batch, use-cases and model endpoints.
	APIToken []byte
	Now      func() time.Time
	Metrics  *metrics.Set
	Logf     func(format string, args ...any)

	// Only restricts the replica to these use cases (empty: all of them).
	Only []string
	// CandidateSets are named lists of item ids a request or a use case
	// can rank (candidates.set, candidate_set).
	CandidateSets map[string][]string
	// Load bounds the work of the replica (see LoadOptions).
	Load LoadOptions
	// Scoring is how the whole catalog is ranked: ScoringInt8 (the
	// default: an int8 pass, the best candidates re-ranked exactly;
	// quant.go) or ScoringExact (float32 throughout).
	Scoring string
	// RowsDir, when set, is where each version's base rows and their ids
	// are spilled to a file read with pread (spill.go): the heap keeps a
	// directory of fixed size instead, for more users than memory.
	RowsDir string
}

// Replica is one serving replica. It keeps the head of the snapshot chain,
// the newest version that passed the checks, the recent good versions for
// rollback, and per use case
// the version its freshness policy chose, so use cases with different
// policies are served from different versions at once.
type Replica struct {
	opts     ReplicaOptions
	useCases map[string]*useCase
	head     atomic.Pointer[Model] // newest version of the snapshot chain
	good     atomic.Pointer[Model] // newest version that passed the checks
	hold     atomic.Pointer[Model] // rollback target while one is in force
	pop      *Popularity
	recent   *History
	avail    *Availability
	limit    *limiter
	scorer   *batcher // gathers concurrent whole-catalog rankings into passes

	mu      sync.Mutex // serialises Apply, Rollback and Resume
	history []*Model   // recent versions, oldest first
	pending *heldState // a rollback read from StateFile, until its version is rebuilt

	versionG *metrics.Gauge
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
	if opts.Checks == (Checks{}) {
		opts.Checks = DefaultChecks()
	}
	if err := opts.Checks.Validate(); err != nil {
		return nil, err
	}
	if err := checkRowsDir(opts.RowsDir); err != nil {
		return nil, err
	}
	if opts.KeepVersions <= 0 {
		opts.KeepVersions = 8
	}
	r := &Replica{opts: opts, useCases: map[string]*useCase{}, pop: NewPopularity()}
	if err := r.initEnvironments(); err != nil {
		return nil, err
	}
	var err error
	if r.pending, err = readHeld(opts.StateFile); err != nil {
		return nil, err
	}
	for name := range r.useCases { // exported from the start, so dashboards show zeros, not gaps
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_requests_total{use_case=%q,code="200"}`, name))
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_fallback_total{use_case=%q,reason="no_model"}`, name))
		opts.Metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf("unirec_serve_request_seconds{use_case=%q}", name))
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_cache_hits_total{use_case=%q}`, name))
		opts.Metrics.GetOrCreateCounter(fmt.Sprintf(`unirec_serve_cache_invalidations_total{use_case=%q}`, name))
	}
	for _, name := range []string{"unirec_serve_api_denied_total", "unirec_serve_admin_denied_total", "unirec_serve_rollbacks_total"} {
		opts.Metrics.GetOrCreateCounter(name) // 0 with no token, cache or rollback: nothing denied, hit or rolled back
	}
	r.versionG = opts.Metrics.GetOrCreateGauge("unirec_serve_model_version", nil)
	opts.Metrics.GetOrCreateGauge("unirec_serve_model_staleness_seconds", func() float64 {
		m := r.live()
		if m == nil {
			return 0
		}
		return max(r.opts.Now().Sub(m.Watermark), 0).Seconds()
	})
	return r, nil
}

// Popularity returns the replica's event-stream popularity counter.
func (r *Replica) Popularity() *Popularity { return r.pop }

// Apply builds the version a snapshot leads to aside (a delta shares all
// it does not change with the previous version) and makes it the head of
// the chain; if it passes the checks it also goes live, else the replica
// stays on the last good version and the next delta is checked again.
// Requests in flight finish on the version they started with. A delta that
// does not apply to the head returns an error wrapping snapshot.ErrGap.
func (r *Replica) Apply(u *snapshot.Update) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	head := r.head.Load()
	m := u.Manifest
	var next *Model
	switch {
	case m.Kind == snapshot.KindFull:
		next = NewModel(u)
	case head == nil || head.Version != m.BaseVersion:
		have := int64(0)
		if head != nil {
			have = head.Version
		}
		return fmt.Errorf("%w: version %d is based on %d, head is %d", snapshot.ErrGap, m.Version, m.BaseVersion, have)
	default:
		next = head.next(u)
	}
	if r.opts.Scoring == ScoringInt8 {
		next.quantizeMatrices(head)
	}
	if r.opts.RowsDir != "" {
		// A new base is seen by no request yet: it can move to its file.
		if err := next.rows.spill(r.opts.RowsDir, newSpillStats(r.opts.Metrics), next.itemFeature); err != nil {
			r.opts.Metrics.GetOrCreateCounter("unirec_serve_rows_spill_errors_total").Inc()
			r.logf("serve: version %d keeps its rows in memory: %v", m.Version, err)
		}
	}
	why, err := r.opts.Checks.check(r.good.Load(), next, u.Delta)
	r.head.Store(next)
	if err != nil {
		r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf("unirec_serve_rejected_versions_total{reason=%q}", why)).Inc()
		r.logf("serve: version %d does not go live, staying on the last good one: %v", m.Version, err)
		return err
	}
	r.good.Store(next)
	r.remember(next)
	r.versionG.Set(float64(r.live().Version))
	return nil
}

func (r *Replica) logf(format string, args ...any) {
	if r.opts.Logf != nil {
		r.opts.Logf(format, args...)
	}
}

// Model returns the version realtime use cases serve (the head, or the
// rollback target while a rollback is in force), or nil.
func (r *Replica) Model() *Model { return r.live() }

// prepare validates a request and plans it; errors are counted.
func (r *Replica) prepare(req *Request) (*useCase, *plan, time.Time, *APIError) {
	u, aerr := r.check(req)
	if aerr != nil {
		r.count(req.UseCase, aerr.Status)
		return nil, nil, time.Time{}, aerr
	}
	now := r.opts.Now()
	p, aerr := r.newPlan(u, req, now)
	if aerr != nil {
		r.count(u.Name, aerr.Status)
		return nil, nil, time.Time{}, aerr
	}
	return u, p, now, nil
}

// Recommend answers one request: from the response cache, the model (if
// its use case's policy has one and it answers before the deadline), or
// the fallback chain.
func (r *Replica) Recommend(ctx context.Context, req *Request) (*Response, *APIError) {
	start := time.Now()
	u, p, now, aerr := r.prepare(req)
	if aerr != nil {
		return nil, aerr
	}
	p.ctx = ctx
	resp := &Response{Items: []Item{}}
	m, why := r.modelFor(u, now)
	var age time.Duration
	var stale bool
	if m != nil {
		age, stale = u.staleness(m, now)
	}
	switch {
	case m == nil:
		aerr = r.fallback(resp, p, nil, why)
	case stale && u.OnStale != OnStaleFlag:
		resp.Model = modelInfo(m, u, now)
		if u.OnStale == OnStaleRefuse {
			r.count(u.Name, http.StatusServiceUnavailable)
			return nil, &APIError{Status: http.StatusServiceUnavailable, Model: &resp.Model,
				Message: fmt.Sprintf("model version %d is %s stale, over max_staleness %s of use case %q",
					m.Version, age.Round(time.Millisecond), u.MaxStaleness, u.Name)}
		}
		aerr = r.fallback(resp, p, m, "stale")
	default:
		resp.Model = modelInfo(m, u, now)
		if aerr = r.answerWithModel(resp, p, m); aerr == nil {
			aerr = nonFiniteScore(resp)
		}
	}
	if aerr != nil {
		r.count(u.Name, aerr.Status)
		return nil, aerr
	}
	resp.Timing.TotalUS = time.Since(start).Microseconds()
	r.opts.Metrics.GetOrCreatePrometheusHistogram(fmt.Sprintf("unirec_serve_request_seconds{use_case=%q}", u.Name)).UpdateDuration(start)
	r.count(u.Name, http.StatusOK)
	return resp, nil
}

func modelInfo(m *Model, u *useCase, now time.Time) ModelInfo {
	age, stale := u.staleness(m, now)
	return ModelInfo{Version: m.Version, Watermark: m.Watermark.UTC().Format(time.RFC3339Nano),
		StalenessMS: age.Milliseconds(), Stale: stale}
}

func (r *Replica) count(useCase string, status int) {
	if r.useCases[useCase] == nil {
		useCase = "unknown"
	}
	r.opts.Metrics.GetOrCreateCounter(fmt.Sprintf("unirec_serve_requests_total{use_case=%q,code=\"%d\"}", useCase, status)).Inc()
}

// check validates a request against its use case.
func (r *Replica) check(req *Request) (*useCase, *APIError) {
	if aerr := req.checkBounds(); aerr != nil {
		return nil, aerr
	}
	if req.UseCase == "" {
		return nil, badRequest("use_case is required (known: %v)", r.useCaseNames())
	}
	u := r.useCases[req.UseCase]
	if u == nil {
		return nil, &APIError{Status: http.StatusNotFound, Message: fmt.Sprintf("use_case %q is not served here (known: %v)", req.UseCase, r.useCaseNames())}
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
