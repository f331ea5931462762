package serve

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The recommend handlers: one request, or a batch of them, each through
// the replica's load limiter.

func (r *Replica) serveRecommend(w http.ResponseWriter, hr *http.Request) {
	if aerr := checkContentType(hr); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	req, aerr := decodeRequest(hr.Body)
	if aerr == nil {
		var resp *Response
		if resp, aerr = r.recommendLimited(hr.Context(), req); aerr == nil {
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	writeJSON(w, aerr.Status, aerr)
}

func checkContentType(hr *http.Request) *APIError {
	if ct := hr.Header.Get("Content-Type"); ct != "" && !strings.Contains(ct, "json") && !strings.Contains(ct, "form-urlencoded") {
		return &APIError{Status: http.StatusUnsupportedMediaType, Message: "Content-Type must be application/json"}
	}
	return nil
}

// BatchRequest is the body of POST /v1/recommend:batch.
type BatchRequest struct {
	Requests []Request `json:"requests"`
}

// BatchResponse answers a batch: one result per request, in order.
type BatchResponse struct {
	Responses []BatchResult `json:"responses"`
}

// BatchResult is the answer to one request of a batch: its HTTP status
// and either the response or the error.
type BatchResult struct {
	Status   int       `json:"status"`
	Response *Response `json:"response,omitempty"`
	Error    string    `json:"error,omitempty"`
}

func (r *Replica) serveBatch(w http.ResponseWriter, hr *http.Request) {
	if aerr := checkContentType(hr); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	var b BatchRequest
	if aerr := decodeJSON(hr.Body, &b, `{"requests": [...]}`); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	if len(b.Requests) == 0 || len(b.Requests) > maxBatch {
		writeJSON(w, http.StatusBadRequest, badRequest("requests: send 1 to %d requests, got %d", maxBatch, len(b.Requests)))
		return
	}
	out := BatchResponse{Responses: make([]BatchResult, len(b.Requests))}
	for i := range b.Requests {
		resp, aerr := r.recommendLimited(hr.Context(), &b.Requests[i])
		if aerr != nil {
			out.Responses[i] = BatchResult{Status: aerr.Status, Error: fmt.Sprintf("requests[%d]: %s", i, aerr.Message)}
			continue
		}
		out.Responses[i] = BatchResult{Status: http.StatusOK, Response: resp}
	}
	writeJSON(w, http.StatusOK, &out)
}

// recommendLimited answers req within the replica's load limits: at once
// when a slot is free; after waiting up to half its latency budget in a
// bounded queue; from the fallback when that wait runs out; HTTP 429 when
// the queue is full.
func (r *Replica) recommendLimited(ctx context.Context, req *Request) (*Response, *APIError) {
	budget := 100 * time.Millisecond
	if u := r.useCases[req.UseCase]; u != nil {
		budget = u.Timeout
	}
	if req.TimeoutMS > 0 {
		budget = time.Duration(min(req.TimeoutMS, maxTimeoutMS)) * time.Millisecond
	}
	start := time.Now()
	switch err := r.limit.acquire(budget / 2); err {
	case nil:
		defer r.limit.release()
		resp, aerr := r.Recommend(ctx, req)
		if resp != nil {
			total := time.Since(start).Microseconds()
			resp.Timing.QueueUS, resp.Timing.TotalUS = max(total-resp.Timing.TotalUS, 0), total
		}
		return resp, aerr
	case errShed:
		r.count(req.UseCase, http.StatusTooManyRequests)
		return nil, &APIError{Status: http.StatusTooManyRequests, Message: "overloaded: too many requests in flight, retry later"}
	default:
		return r.recommendOverloaded(req, start)
	}
}

// recommendOverloaded answers req from its fallback chain without ranking.
func (r *Replica) recommendOverloaded(req *Request, start time.Time) (*Response, *APIError) {
	u, p, now, aerr := r.prepare(req)
	if aerr != nil {
		return nil, aerr
	}
	resp := &Response{Items: []Item{}}
	m, _ := r.modelFor(u, now)
	if m != nil {
		resp.Model = modelInfo(m, u, now)
	}
	if aerr := r.fallback(resp, p, m, "overloaded"); aerr != nil {
		r.count(u.Name, aerr.Status)
		return nil, aerr
	}
	resp.Timing.TotalUS = time.Since(start).Microseconds()
	resp.Timing.QueueUS = resp.Timing.TotalUS
	r.count(u.Name, http.StatusOK)
	return resp, nil
}
