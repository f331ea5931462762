package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// continueWatching is a fifth canvas defined only in configuration: keyed
// by user and device, with its own action ("resume").
var continueWatching = ingest.Canvas{
	Name: "continue_watching",
	Context: []ingest.ContextField{
		{Name: "user_id", Required: true}, {Name: "device", Required: true}, {Name: "country"},
	},
	AttributionWindow: 2 * time.Second,
	Actions: map[string]ingest.Action{
		"resume":  {Positive: true, Weight: 2},
		"dismiss": {Positive: false, Weight: 1},
	},
	NegativeKeepRate: 1,
	Weight:           1,
}

// cwRelevant says whether an item is what a device resumes in the planted
// truth: TV sessions resume c-0..c-9, phone sessions c-10..c-19; the other
// 20 items are rarely resumed.
func cwRelevant(device string, item int) bool {
	if device == "tv" {
		return item < 10
	}
	return item >= 10 && item < 20
}

// cwEvents generates continue_watching requests: 6 impressions, a "resume"
// of relevant items with probability 0.7 and of others with 0.02.
func cwEvents(n int, start time.Time) []ingest.Event {
	r := rand.New(rand.NewPCG(3, 4))
	var out []ingest.Event
	for i := 0; i < n; i++ {
		device := []string{"tv", "phone"}[r.IntN(2)]
		ctx := map[string]string{"user_id": fmt.Sprintf("u-%d", r.IntN(50)), "device": device, "country": "US"}
		t0 := start.Add(time.Duration(i) * 20 * time.Millisecond)
		req := fmt.Sprintf("cw-%d", i)
		for pos, item := range r.Perm(40)[:6] {
			p := int32(pos)
			id := fmt.Sprintf("c-%d", item)
			meta := &stream.ItemMeta{Type: "video", Title: "Show " + id}
			out = append(out, ingest.Event{EventID: req + "-i" + id, Time: t0, Canvas: continueWatching.Name, Action: ingest.ActionImpression,
				RequestID: req, ItemID: id, Position: &p, Context: ctx, Item: meta})
			prob := 0.02
			if cwRelevant(device, item) {
				prob = 0.7
			}
			if r.Float64() < prob {
				out = append(out, ingest.Event{EventID: req + "-r" + id, Time: t0.Add(300 * time.Millisecond), Canvas: continueWatching.Name,
					Action: "resume", RequestID: req, ItemID: id, Context: ctx})
			}
		}
	}
	return out
}

// A canvas added only in the config file flows through ingest, training and
// serving with no code change: its events become examples of its own task,
// the shared model learns it, and its use case is served with its required
// context, ranking the items the planted truth says that device resumes.
func TestFifthCanvasFromConfigOnly(t *testing.T) {
	canvases, err := yaml.Marshal(map[string]any{"canvases": append(ingest.DefaultCanvases(), continueWatching)})
	if err != nil {
		t.Fatal(err)
	}
	s := startSystemConfig(t, t.TempDir(), string(canvases), "--demo=false")
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker), kgo.DefaultProduceTopic("unirec.events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	start := time.Now().Add(-2 * time.Hour)
	asOf := start.Add(3000 * 20 * time.Millisecond).UTC().Format(time.RFC3339Nano) // ask as of the data's time
	produceRequest(t, cl, cwEvents(3000, start))
	task := `{task="continue_watching",label=%q}`
	streamtest.WaitFor(t, 2*time.Minute, "the model to learn the continue_watching examples", func() bool {
		ex := s.metric(t, fmt.Sprintf("unirec_ingest_examples_total"+task, "positive")) + s.metric(t, fmt.Sprintf("unirec_ingest_examples_total"+task, "negative"))
		return ex > 10000 && s.modelApplied(t) >= int64(ex)
	})
	for _, device := range []string{"tv", "phone"} {
		code, resp, raw := s.recommend(t, map[string]any{"use_case": "continue_watching", "k": 10,
			"context": map[string]string{"user_id": "u-1", "device": device, "time": asOf}})
		if code != 200 || resp.Fallback.Used || resp.Model.Version == 0 {
			t.Fatalf("%s: got %d %s, want a model's answer", device, code, raw)
		}
		hits := 0
		for _, it := range resp.Items {
			var n int
			fmt.Sscanf(it.ID, "c-%d", &n)
			if cwRelevant(device, n) {
				hits++
			}
		}
		t.Logf("continue_watching on %s: %d of the top 10 are what %s sessions resume (random: 2.5)", device, hits, device)
		if hits < 6 {
			t.Errorf("continue_watching on %s: %d of 10 relevant, want at least 6: %s", device, hits, raw)
		}
	}
	code, _, raw := s.recommend(t, map[string]any{"use_case": "continue_watching", "context": map[string]string{"user_id": "u-1"}})
	if code != 400 || !strings.Contains(raw, "context.device is required") {
		t.Errorf("without a device: got %d %s, want 400 naming context.device", code, raw)
	}
}
