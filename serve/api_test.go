package serve

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/unirec/unirec/ingest"
)

func testReplica(t testing.TB) *Replica {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplica(ReplicaOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecodeRequestErrorsNameTheProblem(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		_, err := decodeRequest(strings.NewReader(body))
		if err == nil || err.Status != 400 || !strings.Contains(err.Message, want) {
			t.Errorf("%q: got %v, want 400 containing %q", body, err, want)
		}
	}
	f(``, "empty body")
	f(`{`, "bad JSON")
	f(`{"use_case":1}`, "use_case")
	f(`{"use_case":"search","colour":"red"}`, "colour")
	f(`{"use_case":"search"} {}`, "trailing data")
	f(`{"k":"ten"}`, "k")
}

// FuzzRecommendRequest: no request body makes the API panic or answer a
// 5xx other than the documented 503 (fallback "none" without a model);
// bad input is 400 (413 when too large), an unknown use case 404.
func FuzzRecommendRequest(f *testing.F) {
	f.Add(`{"use_case":"search","context":{"user_id":"u","query":"space"},"k":10}`)
	f.Add(`{"use_case":"related_items","context":{"user_id":"u","source_item_id":"m-1","time":"x"},"k":-1}`)
	f.Add(`{"use_case":"notifications","context":{"user_id":"u"},"candidates":{"set":"s","ids":["a"]},"fallback":{"chain":["static"],"items":["x"]}}`)
	f.Add(`{"use_case":"notifications","context":{"user_id":"u"},"candidates":{"ids":["m-1","m-1"]},"exclude":["m-2"],"timeout_ms":1}`)
	f.Add(`{"use_case":"nope"}`)
	f.Add(`{"requests":[{"use_case":"search","context":{"user_id":"u","query":"q"}},{"use_case":"nope"}]}`)
	r, _ := newTestReplica(f, ReplicaOptions{CandidateSets: map[string][]string{"s": {"m-1"}}}, catalog(50))
	f.Fuzz(func(t *testing.T, body string) {
		var batch BatchRequest
		if aerr := decodeJSON(strings.NewReader(body), &batch, "a batch"); aerr != nil && aerr.Status != 400 && aerr.Status != 413 {
			t.Fatalf("batch: status %d", aerr.Status)
		}
		req, aerr := decodeRequest(strings.NewReader(body))
		if aerr != nil {
			if aerr.Status != 400 && aerr.Status != 413 {
				t.Fatalf("status %d", aerr.Status)
			}
			return
		}
		_, aerr = r.Recommend(context.Background(), req)
		if aerr == nil {
			return
		}
		noFallback := req.Fallback != nil && slices.Contains(req.Fallback.Chain, SourceNone)
		if aerr.Status != 400 && aerr.Status != 404 && (aerr.Status != 503 || !noFallback) {
			t.Fatalf("status %d: %s", aerr.Status, aerr.Message)
		}
	})
}

// Every serve counter of the metrics table (docs/metrics.md) is exported by a fresh
// replica, at 0, before the first event that counts (no token, no cache
// configured), so dashboards show zeros, not gaps.
func TestServeCountersExportedFromTheStart(t *testing.T) {
	r := testReplica(t)
	var b strings.Builder
	r.opts.Metrics.WritePrometheus(&b)
	for _, want := range []string{`unirec_serve_cache_hits_total{use_case="search"} 0`, `unirec_serve_cache_invalidations_total{use_case="search"} 0`,
		"unirec_serve_api_denied_total 0", "unirec_serve_admin_denied_total 0", "unirec_serve_rollbacks_total 0",
		`unirec_serve_requests_total{use_case="search",code="200"} 0`} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("a fresh replica's metrics lack %q", want)
		}
	}
}
