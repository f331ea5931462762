package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Request is the body of POST /v1/recommend.
type Request struct {
	UseCase    string            `json:"use_case"`
	K          int               `json:"k"`
	TimeoutMS  int               `json:"timeout_ms"`
	Context    map[string]string `json:"context"`
	Candidates *Candidates       `json:"candidates"`
	Exclude    []string          `json:"exclude"`
}

// Candidates selects what to rank: every item of a type, or explicit ids.
type Candidates struct {
	Type string   `json:"type"`
	IDs  []string `json:"ids"`
}

// Response is the answer of POST /v1/recommend.
type Response struct {
	Items    []Item       `json:"items"`
	Model    ModelInfo    `json:"model"`
	Fallback FallbackInfo `json:"fallback"`
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

// TimingInfo is the server-side time spent.
type TimingInfo struct {
	TotalUS int64 `json:"total_us"`
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

// decodeRequest parses a recommend request body strictly.
func decodeRequest(body io.Reader) (*Request, *APIError) {
	dec := json.NewDecoder(io.LimitReader(body, maxRequestBytes+1))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badRequest("empty body: send a JSON object with use_case, context and k")
		}
		return nil, badRequest("bad JSON: %v", err)
	}
	if dec.More() {
		return nil, badRequest("bad JSON: trailing data after the request object")
	}
	return &req, nil
}

// Handler returns the replica's HTTP API: /v1/recommend, /v1/model,
// /healthz and /readyz.
func (r *Replica) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/recommend", r.serveRecommend)
	mux.HandleFunc("GET /v1/model", r.serveModel)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", r.serveReady)
	mux.HandleFunc("POST /admin/rollback", r.adminHandler(r.serveRollback))
	mux.HandleFunc("POST /admin/resume", r.adminHandler(r.serveResume))
	return mux
}

func (r *Replica) serveRecommend(w http.ResponseWriter, hr *http.Request) {
	if ct := hr.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") && !strings.Contains(ct, "form-urlencoded") {
		writeJSON(w, http.StatusUnsupportedMediaType, &APIError{Message: "Content-Type must be application/json"})
		return
	}
	req, aerr := decodeRequest(hr.Body)
	if aerr == nil {
		var resp *Response
		resp, aerr = r.Recommend(hr.Context(), req)
		if aerr == nil {
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	writeJSON(w, aerr.Status, aerr)
}

func (r *Replica) serveModel(w http.ResponseWriter, _ *http.Request) {
	m := r.live()
	if m == nil {
		writeJSON(w, http.StatusOK, map[string]any{"version": 0, "ready": false})
		return
	}
	now := r.opts.Now()
	useCases := map[string]any{}
	for name, u := range r.useCases {
		if um, why := r.modelFor(u, now); um != nil {
			useCases[name] = map[string]any{"updates": u.Updates, "version": um.Version, "staleness_ms": max(now.Sub(um.Watermark), 0).Milliseconds()}
		} else {
			useCases[name] = map[string]any{"updates": u.Updates, "version": 0, "unavailable": why}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version": m.Version, "head": r.head.Load().Version, "good": r.good.Load().Version, "held": r.hold.Load() != nil,
		"watermark": m.Watermark, "applied": m.Applied, "items": len(m.items), "rows": m.rows.len(),
		"config": m.Config, "ready": true, "recent_versions": r.Versions(), "use_cases": useCases,
	})
}

func (r *Replica) serveReady(w http.ResponseWriter, _ *http.Request) {
	if r.live() == nil {
		http.Error(w, "no model yet\n", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
