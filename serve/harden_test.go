package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// post sends body to path of srv and returns the status and the decoded
// error message, if any.
func post(t *testing.T, srv *httptest.Server, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error
}

// A request whose fallback override or context is over its bounds is
// refused with a 400 that names the field, over HTTP, alone or in a batch.
func TestOversizedRequestFieldsAreRefused(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{}, catalog(10))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	list := func(n int) string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("%q", fmt.Sprint("s-", i))
		}
		return "[" + strings.Join(ids, ",") + "]"
	}
	ctx := func(n int) string {
		f := []string{`"user_id":"u"`}
		for i := 1; i < n; i++ {
			f = append(f, fmt.Sprintf(`"f%d":"v"`, i))
		}
		return "{" + strings.Join(f, ",") + "}"
	}
	f := func(req, want string) {
		t.Helper()
		if status, msg := post(t, srv, "/v1/recommend", req); status != http.StatusBadRequest || !strings.Contains(msg, want) {
			t.Errorf("got %d %q, want 400 naming %q", status, msg, want)
		}
		resp, err := http.Post(srv.URL+"/v1/recommend:batch", "application/json", strings.NewReader(`{"requests":[`+req+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b BatchResponse
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || len(b.Responses) != 1 {
			t.Fatalf("batch: %v %+v", err, b)
		}
		if got := b.Responses[0]; got.Status != http.StatusBadRequest || !strings.Contains(got.Error, want) {
			t.Errorf("batch: got %d %q, want 400 naming %q", got.Status, got.Error, want)
		}
	}
	ok := func(req string) {
		t.Helper()
		if status, msg := post(t, srv, "/v1/recommend", req); status != http.StatusOK {
			t.Errorf("got %d %q for a request within bounds", status, msg)
		}
	}
	base := `{"use_case":"notifications","k":2,`
	ok(base + `"context":{"user_id":"u"},"fallback":{"chain":["static"],"items":` + list(maxFallbackItems) + `}}`)
	f(base+`"context":{"user_id":"u"},"fallback":{"chain":["static"],"items":`+list(maxFallbackItems+1)+`}}`, "fallback.items: at most 1000 ids, got 1001")
	f(base+`"context":{"user_id":"u"},"fallback":{"chain":`+list(maxFallbackChain+1)+`}}`, "fallback.chain: at most 8")
	ok(base + `"context":` + ctx(maxContextFields) + `}`)
	f(base+`"context":`+ctx(maxContextFields+1)+`}`, "context: at most 64 fields, got 65")
	f(base+`"context":{"user_id":"`+strings.Repeat("u", maxContextBytes+1)+`"}}`, "context.user_id: keys and values of at most 4096 bytes")
}

// Ranking checks the request's context with its deadline: when the client
// has left, it stops at the next block and answers 499 (counted), instead
// of ranking the whole catalog for nobody.
func TestRankingStopsWhenTheClientLeft(t *testing.T) {
	r, _ := newTestReplica(t, ReplicaOptions{}, catalog(5000))
	req := &Request{UseCase: "notifications", Context: user("u"), K: 10, TimeoutMS: 60000}
	if resp, aerr := r.Recommend(context.Background(), req); aerr != nil || len(resp.Items) != 10 || resp.Fallback.Used {
		t.Fatalf("a client that stays: %+v %v", resp, aerr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, aerr := r.Recommend(ctx, req)
	if aerr == nil || aerr.Status != 499 {
		t.Fatalf("a client that left: %+v %v, want 499", resp, aerr)
	}
	var b strings.Builder
	r.opts.Metrics.WritePrometheus(&b)
	if want := `unirec_serve_requests_total{use_case="notifications",code="499"} 1`; !strings.Contains(b.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}
