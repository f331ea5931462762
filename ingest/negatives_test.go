package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// engagementOnly returns a registry with the default canvases plus an
// engagement-only "ratings" canvas drawing n negatives with sampler.
func engagementOnly(t *testing.T, n int, sampler string) func(*ingest.Options) {
	t.Helper()
	cs := append(ingest.DefaultCanvases(), ingest.Canvas{Name: "ratings", AttributionWindow: time.Second,
		Context: []ingest.ContextField{{Name: "user_id", Required: true}}, Actions: ingest.DefaultActions(),
		NegativeKeepRate: 1, Weight: 1, EngagementOnly: true, Negatives: n, NegativeSampler: sampler})
	reg, err := ingest.NewRegistry(cs)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *ingest.Options) { o.Registry = reg }
}

// Each positive of an engagement-only canvas gets its negatives from the
// items engaged with before it (never its own item), each with the
// probability of its draw: count/total for popularity, 1/distinct for
// uniform. Sampled negatives are counted apart from events, so the event
// accounting still balances; an impression on such a canvas is refused.
func TestEngagementOnlyNegatives(t *testing.T) {
	for _, sampler := range []string{ingest.SamplerPopularity, ingest.SamplerUniform} {
		t.Run(sampler, func(t *testing.T) {
			p := startIngest(t, engagementOnly(t, 3, sampler))
			t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			items := []string{"m-1", "m-2", "m-1", "m-3", "m-1", "m-2", "m-4", "m-1"}
			for i, it := range items {
				p.produce(t, "u1", event(fmt.Sprintf("r%d", i), t0.Add(time.Duration(i)*time.Second), "ratings", "play", "", it, `"user_id":"u1"`))
			}
			p.produce(t, "u1", event("imp", t0.Add(9*time.Second), "ratings", "impression", "q", "m-9", `"user_id":"u1"`))
			// positives: 8; negatives: none for the first (empty pool),
			// then 3 each.
			recs := p.readCommitted(t, p.topics.Examples, 8+3*7)
			counts, total := map[string]int{}, 0
			var negatives int
			for _, r := range recs {
				var ex stream.Example
				if err := stream.DecodeExample(r.Value, &ex); err != nil {
					t.Fatal(err)
				}
				if ex.Label == 1 {
					counts[ex.ItemID]++
					total++
					continue
				}
				negatives++
				pos := items[total-1] // the positive this negative belongs to
				want := float32(counts[ex.ItemID]-boolInt(ex.ItemID == pos)) / float32(total-1)
				if sampler == ingest.SamplerUniform {
					want = 1 / float32(len(counts)-boolInt(counts[pos] == 1))
				}
				switch {
				case ex.Action != ingest.ActionSampledNegative || ex.ItemID == pos:
					t.Errorf("negative %+v: want action %s and an item other than %s", ex, ingest.ActionSampledNegative, pos)
				case counts[ex.ItemID] == 0:
					t.Errorf("negative item %s was never engaged with before", ex.ItemID)
				case ex.SampleProb != want:
					t.Errorf("negative %s of %s: sample prob %v, want %v", ex.ItemID, ex.EventID, ex.SampleProb, want)
				}
			}
			waitForMetric(t, p.set, "unirec_ingest_events_consumed_total", 9)
			if n := metricValue(p.set, `unirec_ingest_sampled_negatives_total{task="ratings"}`); n != float64(negatives) || negatives != 21 {
				t.Errorf("sampled negatives: metric %v, read %d, want 21", n, negatives)
			}
			if dl := metricValue(p.set, `unirec_ingest_dead_letters_total{reason="unknown_action"}`); dl != 1 {
				t.Errorf("impression on an engagement-only canvas: %v dead letters, want 1", dl)
			}
			if ev := metricValue(p.set, `unirec_ingest_events_total{outcome="example"}`); ev != 8 {
				t.Errorf("events with an example: %v, want 8 (sampled negatives are not events)", ev)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// negative_keep_rate keeps a deterministic fraction of unengaged
// impressions; what it kept and dropped is counted per canvas, and the kept
// negatives carry the keep rate as their sampling probability.
func TestStratificationCounters(t *testing.T) {
	cs := ingest.DefaultCanvases()
	cs[0].NegativeKeepRate = 0.5 // notifications
	reg, err := ingest.NewRegistry(cs)
	if err != nil {
		t.Fatal(err)
	}
	p := startIngest(t, func(o *ingest.Options) { o.Registry = reg })
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const n = 200
	for i := 0; i < n; i++ {
		p.produce(t, "r", event(fmt.Sprintf("i%d", i), t0, "notifications", "impression", "r", fmt.Sprintf("m-%d", i), `"user_id":"u1"`))
	}
	p.produce(t, "r", event("clock", t0.Add(time.Minute), "notifications", "click", "", "m-x", `"user_id":"u1"`))
	waitForMetric(t, p.set, "unirec_ingest_events_consumed_total", n+1)
	kept := metricValue(p.set, `unirec_ingest_stratification_total{task="notifications",decision="kept"}`)
	dropped := metricValue(p.set, `unirec_ingest_stratification_total{task="notifications",decision="sampled_out"}`)
	if kept+dropped != n || kept < 70 || kept > 130 {
		t.Fatalf("kept %v, sampled out %v of %d at keep rate 0.5", kept, dropped, n)
	}
	recs := p.readCommitted(t, p.topics.Examples, int(kept)+1)
	for _, r := range recs {
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Label == 0 && ex.SampleProb != 0.5 {
			t.Errorf("kept negative %s has sample prob %v, want 0.5", ex.EventID, ex.SampleProb)
		}
	}
	if so := metricValue(p.set, `unirec_ingest_events_total{outcome="sampled_out"}`); so != dropped {
		t.Errorf("outcome sampled_out %v, stratification counter %v", so, dropped)
	}
}

// A sampled negative carries the metadata its item's events carried, so
// item features do not tell sampled negatives from positives.
func TestSampledNegativesCarryItemMetadata(t *testing.T) {
	p := startIngest(t, engagementOnly(t, 1, ingest.SamplerUniform))
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	withMeta := `{"event_id":"a","time":%q,"canvas":"ratings","action":"play","item_id":"m-1","context":{"user_id":"u1"},"item":{"type":"video","title":"Space Odyssey","categories":["Sci-Fi"]}}`
	p.produce(t, "u1", fmt.Sprintf(withMeta, t0.Format(time.RFC3339)))
	p.produce(t, "u1", event("b", t0.Add(time.Second), "ratings", "play", "", "m-2", `"user_id":"u1"`))
	recs := p.readCommitted(t, p.topics.Examples, 3)
	for _, r := range recs {
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		if ex.Label == 0 && (ex.ItemID != "m-1" || ex.Item.Title != "Space Odyssey" || ex.Item.Type != "video") {
			t.Errorf("sampled negative %s has metadata %+v, want m-1's", ex.ItemID, ex.Item)
		}
	}
}
