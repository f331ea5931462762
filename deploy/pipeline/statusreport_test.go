package pipeline

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// unirec status names an ingest process (it has no /v1/model or
// /v1/trainer/metrics) instead of calling it unreachable.
func TestStatusLineOfAnIngestProcess(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(Status{Role: "ingest", Started: time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	line, _ := processLine(context.Background(), srv.URL, "")
	if !strings.HasPrefix(line, "ingest: up since 2026-12-02T05:00:00Z") {
		t.Errorf("got %q", line)
	}
	srv.Close()
	if line, _ := processLine(context.Background(), srv.URL, ""); line != "unreachable or not a unirec process" {
		t.Errorf("closed: got %q", line)
	}
}
