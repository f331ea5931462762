package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/stream/streamtest"
)

// statusToken is the API token of the status page test's system.
const statusToken = "status-page-api-token-0123"

// The status page, rendered by headless Chromium, shows live numbers, the
// dead letter just produced, each use case's freshness policy, version and
// staleness, and recommendations from its try-it form, which sends the
// API token the replica requires.
func TestStatusPageInChromium(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "api.token"), []byte(statusToken+"\n"), 0o600)
	s := startSystemConfig(t, dir, "serve:\n  api_token_file: "+filepath.Join(dir, "api.token")+"\n  use_cases:\n"+
		"    - {name: search}\n    - {name: category_exploration, max_staleness: 1h, on_stale: fallback}\n"+
		"    - {name: notifications, updates: interval, update_interval: 1h}\n    - {name: related_items}\n")
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker), kgo.DefaultProduceTopic("unirec.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"event_id": 42`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	streamtest.WaitFor(t, 60*time.Second, "a model and the dead letter", func() bool {
		return s.metric(t, `unirec_serve_model_version`) > 0 && s.metric(t, `unirec_ingest_dead_letters_total{reason="bad_json"}`) == 1
	})
	checkStatusHidesDeadLetterBytes(t, s.api)
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: .ci/run must install it")
		}
		t.Skip("chromium is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=8000", "--dump-dom",
		"http://"+s.api+"/#try&use_case=category_exploration&category=Documentary&k=3&token="+statusToken).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	checks := map[string]string{
		"live event rate":                    `id="rate-events">[0-9][0-9,]*<`,
		"examples trained":                   `id="applied">[1-9][0-9,]*<`,
		"the dead letter":                    `class="bad">bad_json<`,
		"three recommendations from a model": `(?s)(class="recommended">m-[0-9]+<.*){3}`,
		"the version that answered":          `id="try-meta" class="muted">model version [1-9]`,
		"the interval policy of a use case":  `<td>notifications</td><td class="policy">interval 1h0m0s</td><td class="uc-version">[1-9][0-9]*</td><td class="">[0-9.,]+ s</td>`,
		"a staleness bound of a use case": `<td>category_exploration</td><td class="policy">realtime, max staleness 1h0m0s, on stale: fallback</td>` +
			`<td class="uc-version">[1-9][0-9]*</td>`,
	}
	for what, re := range checks {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("the page does not show %s (%s)", what, re)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom[:min(len(dom), 4000)])
	}
}

// checkStatusHidesDeadLetterBytes: with an API token configured, the
// recommend API refuses requests without it and /v1/status leaves the
// dead letters' bytes out unless the request bears it.
func checkStatusHidesDeadLetterBytes(t *testing.T, api string) {
	t.Helper()
	get := func(path, token string) (int, pipeline.Status) {
		req, _ := http.NewRequest("GET", "http://"+api+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st pipeline.Status
		json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st
	}
	if code, _ := get("/v1/model", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/model without the API token: %d, want 401", code)
	}
	_, anon := get("/v1/status", "")
	_, auth := get("/v1/status", statusToken)
	if len(anon.DeadLetters) != 1 || anon.DeadLetters[0].Value != "" || !anon.DeadLetterValuesHidden {
		t.Errorf("/v1/status without the token shows dead-letter bytes: %+v", anon)
	}
	if len(auth.DeadLetters) != 1 || auth.DeadLetters[0].Value != `{"event_id": 42` || auth.DeadLetterValuesHidden {
		t.Errorf("/v1/status with the token: %+v", auth)
	}
	if len(anon.UseCases) != 4 || anon.UseCases[1].Name != "notifications" || anon.UseCases[1].Policy != "interval 1h0m0s" || anon.UseCases[1].Version == 0 {
		t.Errorf("/v1/status use cases: %+v", anon.UseCases)
	}
}
