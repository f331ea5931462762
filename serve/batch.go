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
	if aerr := r.admit(); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	defer r.limit.leave()
	req, aerr := decodeRequest(hr.Body)
	if aerr == nil {
		var resp *Response
		if resp, aerr = r.recommendLimited(hr.Context(), req); aerr == nil {
			writeResponse(w, resp)
			return
		}
	}
	writeJSON(w, aerr.Status, aerr)
}

// admit counts a request in before its body is read: when the replica
// already has as many requests as slots and queue places, it is refused
// at once (429, counted under use case "unknown": nothing was decoded).
func (r *Replica) admit() *APIError {
	if r.limit.admit() != nil {
		r.count("", http.StatusTooManyRequests)
		return errOverloaded
	}
	return nil
}

var errOverloaded = &APIError{Status: http.StatusTooManyRequests, Message: "overloaded: too many requests in flight, retry later"}

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

// serveBatch answers a batch on one slot, taken before any of its
// requests is ranked: the requests are ranked one after another, so the
// batch is one unit of concurrent work, admitted or refused (429) as a
// whole before its body is decoded. When no slot frees within half the
// smallest budget of its requests, every request is answered by its
// fallback.
func (r *Replica) serveBatch(w http.ResponseWriter, hr *http.Request) {
	if aerr := checkContentType(hr); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	if aerr := r.admit(); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	defer r.limit.leave()
	var b BatchRequest
	if aerr := decodeJSON(hr.Body, &b, `{"requests": [...]}`); aerr != nil {
		writeJSON(w, aerr.Status, aerr)
		return
	}
	if len(b.Requests) == 0 || len(b.Requests) > maxBatch {
		writeJSON(w, http.StatusBadRequest, badRequest("requests: send 1 to %d requests, got %d", maxBatch, len(b.Requests)))
		return
	}
	budget := r.budget(&b.Requests[0])
	for i := range b.Requests {
		budget = min(budget, r.budget(&b.Requests[i]))
	}
	start := time.Now()
	err := r.limit.acquire(hr.Context(), budget/2)
	if err != nil && err != errQueueTimed {
		r.count("", errClientGone.Status)
		writeJSON(w, errClientGone.Status, errClientGone)
		return
	}
	if err == nil {
		defer r.limit.release()
	}
	out := BatchResponse{Responses: make([]BatchResult, len(b.Requests))}
	for i := range b.Requests {
		var resp *Response
		var aerr *APIError
		if err == nil {
			resp, aerr = r.Recommend(hr.Context(), &b.Requests[i])
		} else {
			resp, aerr = r.recommendOverloaded(&b.Requests[i], start)
		}
		if aerr != nil {
			out.Responses[i] = BatchResult{Status: aerr.Status, Error: fmt.Sprintf("requests[%d]: %s", i, aerr.Message)}
			continue
		}
		out.Responses[i] = BatchResult{Status: http.StatusOK, Response: resp}
	}
	writeJSON(w, http.StatusOK, &out)
}

// budget is req's latency budget: its timeout_ms, else its use case's
// timeout (100 ms for an unknown use case, refused later).
func (r *Replica) budget(req *Request) time.Duration {
	budget := 100 * time.Millisecond
	if u := r.useCases[req.UseCase]; u != nil {
		budget = u.Timeout
	}
	if req.TimeoutMS > 0 {
		budget = time.Duration(min(req.TimeoutMS, maxTimeoutMS)) * time.Millisecond
	}
	return budget
}

// recommendLimited answers an admitted req within the replica's load
// limits: at once when a slot is free; after waiting up to half its
// latency budget; from the fallback when that wait runs out; 499 when the
// client leaves while it waits.
func (r *Replica) recommendLimited(ctx context.Context, req *Request) (*Response, *APIError) {
	start := time.Now()
	switch err := r.limit.acquire(ctx, r.budget(req)/2); err {
	case nil:
		defer r.limit.release()
		resp, aerr := r.Recommend(ctx, req)
		if resp != nil {
			total := time.Since(start).Microseconds()
			resp.Timing.QueueUS, resp.Timing.TotalUS = max(total-resp.Timing.TotalUS, 0), total
		}
		return resp, aerr
	case errQueueTimed:
		return r.recommendOverloaded(req, start)
	default:
		r.count(req.UseCase, errClientGone.Status)
		return nil, errClientGone
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
