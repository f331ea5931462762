package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// The Open Bandit sample replayed through the real ingest stage gives one
// example per logged impression: positive exactly for the clicked rows,
// at the logged position, negative for every other row.
func TestOpenBanditReplayLabelsEqualClicks(t *testing.T) {
	dir, err := datasets.SharedDataDir(".")
	if err != nil {
		t.Skipf("real data sets not available: %v", err)
	}
	rows, err := datasets.LoadOpenBandit(filepath.Join(dir, "open-bandit", "random_men_men.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64 // wall clock of the stage, ms
	clock.Store(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC).UnixMilli())
	p := startIngest(t, func(o *ingest.Options) {
		o.Now = func() time.Time { return time.UnixMilli(clock.Load()) }
	})
	evs := datasets.OpenBanditEvents(rows)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	recs := make([]*kgo.Record, 0, len(evs))
	for _, e := range evs {
		v, _ := json.Marshal(e)
		recs = append(recs, &kgo.Record{Key: []byte(e.RequestID), Value: v})
	}
	if err := p.cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitForMetric(t, p.set, "unirec_ingest_events_consumed_total", float64(len(evs)))
	// Every event is in: an hour later on the stage's clock, the windows
	// still open close as idle ones do.
	clock.Add(time.Hour.Milliseconds())
	got := p.readCommitted(t, p.topics.Examples, len(rows))
	labels := map[string]stream.Example{}
	for _, r := range got {
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		if _, dup := labels[ex.RequestID]; dup {
			t.Fatalf("request %s has two examples", ex.RequestID)
		}
		labels[ex.RequestID] = ex
	}
	clicks := 0
	for i, row := range rows {
		ex, ok := labels[fmt.Sprintf("ob-%d", i)]
		want := float32(0)
		if row.Click {
			want = 1
			clicks++
		}
		switch {
		case !ok:
			t.Fatalf("row %d has no example", i)
		case ex.Label != want:
			t.Errorf("row %d: label %v, want %v (click %v)", i, ex.Label, want, row.Click)
		case ex.Position != row.Position || ex.ItemID != fmt.Sprintf("ob-%d", row.Item):
			t.Errorf("row %d: example at position %d item %s, want %d ob-%d", i, ex.Position, ex.ItemID, row.Position, row.Item)
		}
	}
	if late := metricValue(p.set, `unirec_ingest_events_total{outcome="dead_letter"}`); late != 0 {
		t.Errorf("%v events were dead-lettered", late)
	}
	t.Logf("%d impressions, %d clicks: %d examples, positives exactly the clicks", len(rows), clicks, len(labels))
}
