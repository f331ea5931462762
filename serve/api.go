package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Request is the body of POST /v1/recommend.
type Request struct {
	UseCase    string            `json:"use_case"`
	K          int               `json:"k"`
	TimeoutMS  int               `json:"timeout_ms"`
	Context    map[string]string `json:"context"`
	Candidates *Candidates       `json:"candidates"`
	Exclude    []string          `json:"exclude"`
	Fallback   *FallbackOverride `json:"fallback"`
}

// Candidates selects what to rank: every item of a type, a named set from
// the config (serve.candidate_sets), or explicit ids; at most one of them.
type Candidates struct {
	Type string   `json:"type"`
	Set  string   `json:"set"`
	IDs  []string `json:"ids"`
}

// FallbackOverride replaces the use case's fallback chain and static
// items for one request; chain ["none"] answers 503 instead of falling
// back.
type FallbackOverride struct {
	Chain []string `json:"chain"`
	Items []string `json:"items"`
}

// Response is the answer of POST /v1/recommend.
type Response struct {
	Items    []Item       `json:"items"`
	Model    ModelInfo    `json:"model"`
	Fallback FallbackInfo `json:"fallback"`
	Cached   bool         `json:"cached"`
	Timing   TimingInfo   `json:"timing"`
}

// Item is one recommended item.
type Item struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
}

// ModelInfo names the model version that answered.
type ModelInfo struct {
	Version     int64  `json:"version"`
	Watermark   string `json:"watermark,omitempty"`
	StalenessMS int64  `json:"staleness_ms"`
	Stale       bool   `json:"stale"`
}

// FallbackInfo says whether a fallback answered, and why.
type FallbackInfo struct {
	Used   bool   `json:"used"`
	Reason string `json:"reason,omitempty"`
	Source string `json:"source,omitempty"`
}

// TimingInfo is the server-side time spent: in all, and waiting for a
// slot of the replica's load limiter.
type TimingInfo struct {
	TotalUS int64 `json:"total_us"`
	QueueUS int64 `json:"queue_us"`
}

// APIError is an error answer with its HTTP status.
type APIError struct {
	Status  int        `json:"-"`
	Message string     `json:"error"`
	Model   *ModelInfo `json:"model,omitempty"` // the version that would have answered

}

func (e *APIError) Error() string { return e.Message }

func badRequest(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusBadRequest, Message: fmt.Sprintf(format, args...)}
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 1 << 20

// Bounds of a request's maps and lists beyond candidates.ids and exclude
// (see recommend.go), so no one request costs unbounded memory or time.
const (
	maxContextFields  = 64
	maxContextBytes   = 4096 // per key and per value
	maxFallbackItems  = 1000
	maxFallbackChain  = 8
	maxRequestUseCase = 256
)

// checkBounds refuses a request whose context or fallback override is
// over its bounds; the error names the field.
func (req *Request) checkBounds() *APIError {
	if len(req.UseCase) > maxRequestUseCase {
		return badRequest("use_case: at most %d bytes, got %d", maxRequestUseCase, len(req.UseCase))
	}
	if len(req.Context) > maxContextFields {
		return badRequest("context: at most %d fields, got %d", maxContextFields, len(req.Context))
	}
	for k, v := range req.Context {
		if len(k) > maxContextBytes || len(v) > maxContextBytes {
			return badRequest("context.%.64s: keys and values of at most %d bytes, got %d and %d", k, maxContextBytes, len(k), len(v))
		}
	}
	if f := req.Fallback; f != nil {
		if len(f.Items) > maxFallbackItems {
			return badRequest("fallback.items: at most %d ids, got %d", maxFallbackItems, len(f.Items))
		}
		if len(f.Chain) > maxFallbackChain {
			return badRequest("fallback.chain: at most %d sources, got %d", maxFallbackChain, len(f.Chain))
		}
	}
	return nil
}

// decodeRequest parses a recommend request body strictly.
func decodeRequest(body io.Reader) (*Request, *APIError) {
	var req Request
	return &req, decodeJSON(body, &req, "a JSON object with use_case, context and k")
}

// decodeJSON parses one JSON value of at most maxRequestBytes into v
// strictly: unknown fields and trailing data are errors.
func decodeJSON(body io.Reader, v any, what string) *APIError {
	lr := &io.LimitedReader{R: body, N: maxRequestBytes + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		switch {
		case lr.N <= 0:
			return &APIError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", maxRequestBytes)}
		case errors.Is(err, io.EOF):
			return badRequest("empty body: send %s", what)
		}
		return badRequest("bad JSON: %v", err)
	}
	if dec.More() {
		return badRequest("bad JSON: trailing data after the request")
	}
	return nil
}

// HTTPOptions bound what one client can hold of an HTTP server: how long
// it may take to send headers and a request, to read an answer, to keep an
// idle connection, how large its headers may be, and how many connections
// are open at once (see LimitListener).
type HTTPOptions struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	// WriteTimeout runs from the end of the request's headers: it covers
	// reading the body, ranking (at most timeout_ms, 60 s) and writing.
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	MaxConnections int
}

// DefaultHTTPOptions are the bounds of every unirec HTTP server.
func DefaultHTTPOptions() HTTPOptions {
	return HTTPOptions{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 15 * time.Second, WriteTimeout: 90 * time.Second,
		IdleTimeout: 60 * time.Second, MaxHeaderBytes: 64 << 10, MaxConnections: 4096}
}

// NewHTTPServer returns a server of h with o's timeouts and header bound;
// serve it on LimitListener(ln, o.MaxConnections, ...) for the
// connection cap.
func NewHTTPServer(h http.Handler, o HTTPOptions) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: o.ReadHeaderTimeout, ReadTimeout: o.ReadTimeout,
		WriteTimeout: o.WriteTimeout, IdleTimeout: o.IdleTimeout, MaxHeaderBytes: o.MaxHeaderBytes}
}

// Handler returns the replica's HTTP API: /v1/recommend,
// /v1/recommend:batch, /v1/use-cases, /v1/model, /openapi.json, /healthz,
// /readyz and the admin endpoints. With ReplicaOptions.APIToken the first
// four need it; health, readiness, the OpenAPI document and /metrics
// (mounted by the caller) stay open.
func (r *Replica) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/recommend", r.apiHandler(r.serveRecommend))
	mux.HandleFunc("POST /v1/recommend:batch", r.apiHandler(r.serveBatch))
	mux.HandleFunc("GET /v1/use-cases", r.apiHandler(r.serveUseCases))
	mux.HandleFunc("GET /v1/model", r.apiHandler(r.serveModel))
	mux.HandleFunc("GET /openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", r.serveReady)
	mux.HandleFunc("POST /admin/rollback", r.adminHandler(r.serveRollback))
	mux.HandleFunc("POST /admin/resume", r.adminHandler(r.serveResume))
	return mux
}

func (r *Replica) serveModel(w http.ResponseWriter, _ *http.Request) {
	m := r.live()
	if m == nil {
		writeJSON(w, http.StatusOK, map[string]any{"version": 0, "ready": false})
		return
	}
	useCases := map[string]UseCaseState{}
	for _, s := range r.UseCaseStates() {
		useCases[s.Name] = s
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version": m.Version, "head": r.head.Load().Version, "good": r.good.Load().Version, "held": r.hold.Load() != nil,
		"watermark": m.Watermark, "applied": m.Applied, "items": len(m.items), "rows": m.rows.len(),
		"config": m.Config, "ready": true, "recent_versions": r.Versions(), "use_cases": useCases,
	})
}

func (r *Replica) serveReady(w http.ResponseWriter, _ *http.Request) {
	if r.live() == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no model yet\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
