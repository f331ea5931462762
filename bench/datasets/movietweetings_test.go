package datasets

import (
	"slices"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
)

func TestMovieTweetingsEvents(t *testing.T) {
	m, err := LoadMovieTweetings("testdata/movietweetings")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Ratings) != 5 || len(m.Movies) != 3 || m.Movies["0000003"].Genres != nil {
		t.Fatalf("loaded %d ratings, %d movies (%+v); want 5, 3, and no genres for 0000003", len(m.Ratings), len(m.Movies), m.Movies)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	evs := m.Events(now)
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, e := range evs {
		if rej := reg.Check(&e); rej != nil {
			t.Fatalf("event %d does not validate: %v", i, rej)
		}
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Fatalf("event %d goes back in time", i)
		}
		c := e.Context
		got = append(got, e.Canvas+" "+e.Action+" "+e.ItemID+" "+c["user_id"]+" "+c["source_item_id"]+c["category"]+c["query"])
	}
	// In time order: u7 rates 1 (4: dismiss), u8 rates 1 (8: play; file row
	// 2 picks genre 2%2=0 and title word 0), u7 rates 2 (9: play, after 1;
	// row 0), u8 rates 3 (10: play, no genre; row 3 picks word 3%2=1 of
	// "untitled short"), u7 rates 3 (6: click, after 2).
	want := []string{
		"notifications dismiss tt0000001 u-7 ",
		"notifications play tt0000001 u-8 ",
		"category_exploration play tt0000001 u-8 Drama",
		"search click tt0000001 u-8 quiet",
		"notifications play tt0000002 u-7 ",
		"related_items play tt0000002 u-7 tt0000001",
		"category_exploration play tt0000002 u-7 Action",
		"search click tt0000002 u-7 robots",
		"notifications play tt0000003 u-8 ",
		"related_items play tt0000003 u-8 tt0000001",
		"search click tt0000003 u-8 short",
		"notifications click tt0000003 u-7 ",
		"related_items click tt0000003 u-7 tt0000002",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
	if !evs[len(evs)-1].Time.Equal(now) {
		t.Errorf("rebased last event at %s, want %s", evs[len(evs)-1].Time, now)
	}
}

func TestTitleWords(t *testing.T) {
	f := func(title string, want ...string) {
		t.Helper()
		if got := TitleWords(title); !slices.Equal(got, want) {
			t.Errorf("TitleWords(%q) = %q, want %q", title, got, want)
		}
	}
	f("The Dark Knight Rises (2012)", "dark", "knight", "rises")
	f("Amélie: Le fabuleux destin d'Amélie Poulain (2001)", "amélie", "fabuleux", "destin", "poulain")
	f("Up (2009)")
}
