package client_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

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
