package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesTheHandlers sends real requests for every documented
// path and status and validates each answer against the document's schema
// (and each request body sent against the request schema); every
// documented status must have been seen.
func TestOpenAPIMatchesTheHandlers(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	r, _ := newTestReplica(t, ReplicaOptions{Load: LoadOptions{MaxInFlight: 1, MaxQueue: 1}, UseCases: []UseCase{
		{Name: "notifications"}, {Name: "strict", Canvas: "notifications", Environment: Environment{FallbackChain: []string{"none"}}},
	}}, catalog(20))
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	v := &schemaValidator{doc: doc}
	seen := map[string]bool{}
	call := func(method, path, ctype, body string, want int) {
		t.Helper()
		hr, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			hr.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s %.80s: status %d, want %d: %s", method, path, body, resp.StatusCode, want, raw)
		}
		if (want == 429 || want == 503) && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: %d without Retry-After", method, path, want)
		}
		op := v.at("paths", path, strings.ToLower(method))
		if op == nil {
			t.Fatalf("%s %s is not documented", method, path)
		}
		seen[fmt.Sprintf("%s %s %d", method, path, want)] = true
		sch := v.at("paths", path, strings.ToLower(method), "responses", fmt.Sprint(want), "content", "application/json", "schema")
		if v.at("paths", path, strings.ToLower(method), "responses", fmt.Sprint(want)) == nil {
			t.Fatalf("%s %s: status %d is not documented", method, path, want)
		}
		if sch != nil {
			var got any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
			}
			if err := v.validate(sch, got, "answer"); err != nil {
				t.Errorf("%s %s %d: %v\n%s", method, path, want, err, raw)
			}
		}
		if reqSch := v.at("paths", path, strings.ToLower(method), "requestBody", "content", "application/json", "schema"); reqSch != nil && want == 200 {
			var got any
			json.Unmarshal([]byte(body), &got)
			if err := v.validate(reqSch, got, "request"); err != nil {
				t.Errorf("%s %s: the schema refuses a request the handler accepts: %v", method, path, err)
			}
		}
	}
	ok := `{"use_case":"notifications","context":{"user_id":"u","country":"US"},"k":3,"timeout_ms":50,"candidates":{"type":"video"},"exclude":["m-19"],"fallback":{"chain":["popularity","static"],"items":["s-1"]}}`
	call("POST", "/v1/recommend", "application/json", ok, 200)
	call("POST", "/v1/recommend", "", `{"use_case":"notifications","context":{"user_id":"u"},"candidates":{"ids":["m-1","m-2"]}}`, 200)
	call("POST", "/v1/recommend", "application/json", `{"use_case":"notifications","context":{"user_id":"u"},"k":-1}`, 400)
	call("POST", "/v1/recommend", "application/json", `{"use_case":"nope"}`, 404)
	call("POST", "/v1/recommend", "application/json", `{"use_case":"`+strings.Repeat("x", maxRequestBytes)+`"}`, 413)
	call("POST", "/v1/recommend", "text/plain", ok, 415)
	call("POST", "/v1/recommend", "application/json", `{"use_case":"strict","context":{"user_id":"u"},"timeout_ms":1,"fallback":{"chain":["none"]}}`, 200)
	// Overload: every slot and queue place is taken, so the next request
	// (or batch) is shed with 429.
	r.limit.admitted.Add(r.limit.max)
	call("POST", "/v1/recommend", "application/json", ok, 429)
	call("POST", "/v1/recommend:batch", "application/json", `{"requests":[`+ok+`]}`, 429)
	r.limit.admitted.Add(-r.limit.max)
	// No model may answer in time and the fallback is none: 503.
	r.opts.Now = (&testClock{now: testEpoch, step: 1 << 40}).Now
	call("POST", "/v1/recommend", "application/json", `{"use_case":"strict","context":{"user_id":"u"}}`, 503)
	call("POST", "/v1/recommend:batch", "application/json", `{"requests":[`+ok+`,{"use_case":"nope"}]}`, 200)
	call("POST", "/v1/recommend:batch", "application/json", `{"requests":[]}`, 400)
	call("POST", "/v1/recommend:batch", "application/json", `{"requests":["`+strings.Repeat("x", maxRequestBytes)+`"]}`, 413)
	call("GET", "/v1/use-cases", "", "", 200)
	call("GET", "/v1/model", "", "", 200)
	call("GET", "/openapi.json", "", "", 200)
	call("GET", "/healthz", "", "", 200)
	call("GET", "/readyz", "", "", 200)
	empty, _ := newTestReplica(t, ReplicaOptions{}, nil)
	srv.Config.Handler = empty.Handler()
	call("GET", "/readyz", "", "", 503)
	call("GET", "/v1/model", "", "", 200)
	locked, _ := newTestReplica(t, ReplicaOptions{APIToken: []byte("api-token-0123456789")}, catalog(3))
	srv.Config.Handler = locked.Handler()
	call("POST", "/v1/recommend", "application/json", ok, 401)
	call("POST", "/v1/recommend:batch", "application/json", `{"requests":[`+ok+`]}`, 401)
	call("GET", "/v1/use-cases", "", "", 401)
	call("GET", "/v1/model", "", "", 401)
	for path, ops := range doc["paths"].(map[string]any) {
		for method, op := range ops.(map[string]any) {
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				if k := fmt.Sprintf("%s %s %s", strings.ToUpper(method), path, status); !seen[k] {
					t.Errorf("documented but never seen: %s", k)
				}
			}
		}
	}
}

// schemaValidator checks JSON values against the subset of OpenAPI 3
// schemas the document uses: $ref, type, nullable, properties, required,
// additionalProperties, items, enum.
type schemaValidator struct{ doc map[string]any }

func (v *schemaValidator) at(path ...string) map[string]any {
	var cur any = v.doc
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	m, _ := cur.(map[string]any)
	return m
}

func (v *schemaValidator) validate(s map[string]any, val any, where string) error {
	if ref, ok := s["$ref"].(string); ok {
		return v.validate(v.at(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...), val, where)
	}
	if val == nil {
		if s["nullable"] == true {
			return nil
		}
		return fmt.Errorf("%s: null", where)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, val) {
		return fmt.Errorf("%s: %v is not one of %v", where, val, enum)
	}
	switch s["type"] {
	case "object":
		obj, ok := val.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an object", where, val)
		}
		for _, req := range asSlice(s["required"]) {
			if _, ok := obj[req.(string)]; !ok {
				return fmt.Errorf("%s: required %q is missing", where, req)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, x := range obj {
			ps, ok := props[k].(map[string]any)
			if !ok {
				switch ap := s["additionalProperties"].(type) {
				case bool:
					if !ap {
						return fmt.Errorf("%s: %q is not documented", where, k)
					}
					continue
				case map[string]any:
					ps = ap
				default:
					continue
				}
			}
			if err := v.validate(ps, x, where+"."+k); err != nil {
				return err
			}
		}
	case "array":
		arr, ok := val.([]any)
		if !ok {
			return fmt.Errorf("%s: %T, want an array", where, val)
		}
		items, _ := s["items"].(map[string]any)
		for i, x := range arr {
			if err := v.validate(items, x, fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	case "string":
		if _, ok := val.(string); !ok {
			return fmt.Errorf("%s: %T, want a string", where, val)
		}
	case "integer":
		if f, ok := val.(float64); !ok || f != float64(int64(f)) {
			return fmt.Errorf("%s: %v, want an integer", where, val)
		}
	case "number":
		if _, ok := val.(float64); !ok {
			return fmt.Errorf("%s: %T, want a number", where, val)
		}
	case "boolean":
		if _, ok := val.(bool); !ok {
			return fmt.Errorf("%s: %T, want a boolean", where, val)
		}
	}
	return nil
}

func asSlice(x any) []any {
	s, _ := x.([]any)
	return s
}
