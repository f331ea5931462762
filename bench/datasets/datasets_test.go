package datasets

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
)

func dataDir(t *testing.T) string {
	t.Helper()
	d, err := SharedDataDir(".")
	if err != nil {
		t.Skipf("real data sets not available: %v", err)
	}
	return d
}

func TestMovieLensEvents(t *testing.T) {
	ml, err := LoadMovieLens(filepath.Join(dataDir(t), "movielens-small"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Ratings) != 100836 || len(ml.Tags) != 3683 || len(ml.Movies) != 9742 {
		t.Fatalf("got %d ratings, %d tags, %d movies; the README says 100836, 3683, 9742", len(ml.Ratings), len(ml.Tags), len(ml.Movies))
	}
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	evs := ml.Events(now)
	perCanvas := map[string]int{}
	ids := map[string]bool{}
	for i, e := range evs {
		if rej := reg.Check(&e); rej != nil {
			t.Fatalf("event %d does not validate: %v", i, rej)
		}
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Fatalf("event %d goes back in time", i)
		}
		if ids[e.EventID] {
			t.Fatalf("event id %s twice", e.EventID)
		}
		ids[e.EventID] = true
		perCanvas[e.Canvas]++
	}
	// related_items has one event per rating but each user's first (610 users).
	if perCanvas["notifications"] != 100836 || perCanvas["related_items"] != 100836-610 || perCanvas["search"] != 3683 {
		t.Errorf("events per canvas %v", perCanvas)
	}
	if perCanvas["category_exploration"] == 0 {
		t.Errorf("no category_exploration events")
	}
	if !evs[len(evs)-1].Time.Equal(now) {
		t.Errorf("rebased last event at %s, want %s", evs[len(evs)-1].Time, now)
	}
}

func TestOpenBanditEvents(t *testing.T) {
	rows, err := LoadOpenBandit(filepath.Join(dataDir(t), "open-bandit", "random_men_men.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10000 {
		t.Fatalf("got %d rows, want 10000", len(rows))
	}
	clicks := 0
	for _, r := range rows {
		if r.Click {
			clicks++
		}
	}
	evs := OpenBanditEvents(rows)
	if len(evs) != len(rows)+clicks {
		t.Fatalf("%d events for %d impressions and %d clicks", len(evs), len(rows), clicks)
	}
	reg, _ := ingest.NewRegistry(ingest.DefaultCanvases())
	for _, e := range evs {
		if rej := reg.Check(&e); rej != nil {
			t.Fatalf("event %s does not validate: %v", e.EventID, rej)
		}
	}
	t.Logf("%d impressions, %d clicks", len(rows), clicks)
}
