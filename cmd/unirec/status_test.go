package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The status page, rendered by headless Chromium, shows live numbers, the
// dead letter just produced, and recommendations from its try-it form.
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: .ci/run must install it")
		}
		t.Skip("chromium is not installed")
	}
	s := startSystem(t, t.TempDir())
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker), kgo.DefaultProduceTopic("unirec.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte(`{"event_id": 42`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "a model and the dead letter", func() bool {
		return s.modelApplied(t) > 0 && s.metric(t, `unirec_ingest_dead_letters_total{reason="bad_json"}`) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=8000", "--dump-dom",
		"http://"+s.api+"/#try&use_case=category_exploration&category=Documentary&k=3").Output()
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
