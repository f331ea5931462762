package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
)

// TestClientSpeaksTheAPI runs the client against a real replica over HTTP.
func TestClientSpeaksTheAPI(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, Only: []string{"notifications", "search"},
		UseCases: []serve.UseCase{{Name: "notifications", FallbackItems: []string{"s-1", "s-2"}, Environment: serve.Environment{FallbackChain: []string{"static"}}}, {Name: "search"}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	c := client.New(srv.URL, nil)
	ctx := context.Background()

	resp, err := c.Recommend(ctx, &serve.Request{UseCase: "notifications", Context: map[string]string{"user_id": "u"}, K: 1})
	if err != nil || len(resp.Items) != 1 || resp.Items[0].ID != "s-1" || resp.Fallback.Reason != "no_model" {
		t.Errorf("recommend: %+v %v", resp, err)
	}
	_, err = c.Recommend(ctx, &serve.Request{UseCase: "nope"})
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 404 || e.Message == "" {
		t.Errorf("unknown use case: %v, want *Error 404", err)
	}
	_, err = c.Recommend(ctx, &serve.Request{UseCase: "notifications", Context: map[string]string{"user_id": "u"}, Fallback: &serve.FallbackOverride{Chain: []string{"none"}}})
	if !errors.As(err, &e) || e.Status != 503 || e.RetryAfter != time.Second {
		t.Errorf("no fallback: %v, want *Error 503 retrying after 1s", err)
	}
	results, err := c.RecommendBatch(ctx, []serve.Request{{UseCase: "notifications", Context: map[string]string{"user_id": "u"}}, {UseCase: "search"}})
	if err != nil || len(results) != 2 || results[0].Status != 200 || len(results[0].Response.Items) != 2 || results[1].Status != 400 {
		t.Errorf("batch: %+v %v", results, err)
	}
	ucs, err := c.UseCases(ctx)
	if err != nil || len(ucs) != 2 || ucs[0].Name != "notifications" || ucs[0].FallbackChain[0] != "static" || ucs[1].RequiredContext[1] != "query" {
		t.Errorf("use cases: %+v %v", ucs, err)
	}
	m, err := c.Model(ctx)
	if err != nil || m.Ready {
		t.Errorf("model: %+v %v", m, err)
	}
}

// A replica with an API token refuses the recommend, batch, use-cases and
// model endpoints without it (401 with a JSON error, counted) and answers
// a client that sends it; health and the OpenAPI document stay open.
func TestClientSendsTheAPIToken(t *testing.T) {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	set := metrics.NewSet()
	r, err := serve.NewReplica(serve.ReplicaOptions{Registry: reg, APIToken: []byte("api-token-0123456789"), Metrics: set})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	ctx := context.Background()
	req := &serve.Request{UseCase: "notifications", Context: map[string]string{"user_id": "u"}}
	calls := map[string]func(*client.Client) error{
		"recommend": func(c *client.Client) error { _, err := c.Recommend(ctx, req); return err },
		"batch":     func(c *client.Client) error { _, err := c.RecommendBatch(ctx, []serve.Request{*req}); return err },
		"use cases": func(c *client.Client) error { _, err := c.UseCases(ctx); return err },
		"model":     func(c *client.Client) error { _, err := c.Model(ctx); return err },
	}
	anon := client.New(srv.URL, nil)
	for name, call := range calls {
		for _, c := range []*client.Client{anon, anon.WithToken("wrong-token-0123456789")} {
			var e *client.Error
			if err := call(c); !errors.As(err, &e) || e.Status != 401 || !strings.Contains(e.Message, "API token") {
				t.Errorf("%s without the token: %v, want a 401 naming the API token", name, err)
			}
		}
		if err := call(anon.WithToken("api-token-0123456789")); err != nil {
			t.Errorf("%s with the token: %v", name, err)
		}
	}
	if got := set.GetOrCreateCounter("unirec_serve_api_denied_total").Get(); got != 8 {
		t.Errorf("unirec_serve_api_denied_total = %d, want 8", got)
	}
	if err := anon.Healthz(ctx); err != nil {
		t.Errorf("healthz needs no token: %v", err)
	}
	for _, path := range []string{"/readyz", "/openapi.json"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 401 {
			t.Errorf("%s asks for a token", path)
		}
	}
}
