// Tests of package synth: determinism, event validity, the planted truth
// showing in the clicks, and evaluation queries consistent with the catalog.
package synth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/unirec/unirec/ingest"
)

func generate(w *World, requests int) []ingest.Event {
	var all []ingest.Event
	for range requests {
		all = append(all, w.Next()...)
	}
	return all
}

// relevantGenre is the genre a request's context points at, read back from
// the context alone (plus the user's favourite for notifications).
func relevantGenre(w *World, e ingest.Event) string {
	switch e.Canvas {
	case CanvasNotifications:
		return w.FavouriteGenre(e.Context["user_id"])
	case CanvasRelatedItems:
		return w.Genre(e.Context["source_item_id"])
	case CanvasSearch:
		for _, g := range w.Genres() {
			if strings.Contains(" "+strings.Join(w.Vocabulary(g), " ")+" ", " "+strings.Fields(e.Context["query"])[0]+" ") {
				return g
			}
		}
	case CanvasCategoryExploration:
		return e.Context["category"]
	}
	return ""
}

func TestDeterministic(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b int64
		same bool
	}{
		{"same seed", 7, 7, true},
		{"other seed", 7, 8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wa, wb := NewWorld(Options{Seed: tc.a}), NewWorld(Options{Seed: tc.b})
			ja, _ := json.Marshal(generate(wa, 50))
			jb, _ := json.Marshal(generate(wb, 50))
			qa, ra := wa.Query(CanvasSearch, 3)
			qb, rb := wb.Query(CanvasSearch, 3)
			same := string(ja) == string(jb) && reflect.DeepEqual(wa.Items(), wb.Items()) &&
				reflect.DeepEqual(qa, qb) && reflect.DeepEqual(ra, rb)
			if same != tc.same {
				t.Fatalf("same output = %v, want %v", same, tc.same)
			}
		})
	}
}

func TestEventsValid(t *testing.T) {
	w := NewWorld(Options{Seed: 1})
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	events := generate(w, 400)
	ids := map[string]bool{}
	perCanvas := map[string]int{}
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, rej := ingest.DecodeEvent(b, 1<<16); rej != nil {
			t.Fatalf("event %s rejected: %v", e.EventID, rej)
		}
		if ids[e.EventID] {
			t.Fatalf("duplicate event id %s", e.EventID)
		}
		ids[e.EventID] = true
		c := reg.Canvas(e.Canvas)
		if c == nil {
			t.Fatalf("unknown canvas %q", e.Canvas)
		}
		for _, f := range c.Context {
			if e.Context[f.Name] == "" && (f.Required || f.Name == "country" || f.Name == "language" || f.Name == "device") {
				t.Fatalf("%s event %s lacks context field %s", e.Canvas, e.EventID, f.Name)
			}
		}
		switch e.Action {
		case ingest.ActionImpression:
			perCanvas[e.Canvas]++
			if e.RequestID == "" || e.Position == nil || e.Item == nil || e.Item.Title == "" || len(e.Item.Categories) != 1 {
				t.Fatalf("incomplete impression %+v", e)
			}
		case "click", "play":
		default:
			t.Fatalf("unexpected action %q", e.Action)
		}
	}
	for _, c := range w.Canvases() {
		if perCanvas[c] != 100*w.Options().Impressions {
			t.Errorf("canvas %s: %d impressions, want %d", c, perCanvas[c], 100*w.Options().Impressions)
		}
	}
}

func TestRequestShape(t *testing.T) {
	w := NewWorld(Options{Seed: 2})
	prevTime := w.Options().Start.Add(-w.Options().Step)
	for range 100 {
		evs := w.Next()
		imp := evs[:w.Options().Impressions]
		if !imp[0].Time.Equal(prevTime.Add(w.Options().Step)) {
			t.Fatalf("request time %v, want %v", imp[0].Time, prevTime.Add(w.Options().Step))
		}
		prevTime = imp[0].Time
		relevant := 0
		want := relevantGenre(w, imp[0])
		for pos, e := range imp {
			if e.Action != ingest.ActionImpression || int(*e.Position) != pos || e.RequestID != imp[0].RequestID {
				t.Fatalf("bad impression %d: %+v", pos, e)
			}
			if w.Genre(e.ItemID) == want {
				relevant++
			}
		}
		if 2*relevant < len(imp) {
			t.Fatalf("%s: only %d/%d relevant items shown", imp[0].Canvas, relevant, len(imp))
		}
		for _, e := range evs[len(imp):] {
			if e.Action == ingest.ActionImpression || !e.Time.After(imp[0].Time) || e.RequestID != imp[0].RequestID {
				t.Fatalf("bad engagement %+v", e)
			}
		}
	}
}

func TestClicksFollowTruth(t *testing.T) {
	w := NewWorld(Options{Seed: 3})
	type rate struct{ shown, clicked int }
	stats := map[string]map[bool]*rate{}
	for _, c := range w.Canvases() {
		stats[c] = map[bool]*rate{true: {}, false: {}}
	}
	for range 2000 {
		for _, e := range w.Next() {
			rel := w.Genre(e.ItemID) == relevantGenre(w, e)
			switch e.Action {
			case ingest.ActionImpression:
				stats[e.Canvas][rel].shown++
			case "click":
				stats[e.Canvas][rel].clicked++
			}
		}
	}
	for c, s := range stats {
		rel := float64(s[true].clicked) / float64(s[true].shown)
		other := float64(s[false].clicked) / float64(s[false].shown)
		t.Logf("%s: click rate relevant %.3f, other %.3f", c, rel, other)
		if rel < 0.5 || rel > 0.7 || other > 0.06 || rel < 10*other {
			t.Errorf("%s: click rate relevant %.3f, other %.3f", c, rel, other)
		}
	}
}

func TestQuery(t *testing.T) {
	w := NewWorld(Options{Seed: 4, Groups: 12, Items: 300})
	genre := map[string]string{}
	titles := map[string]bool{}
	for _, it := range w.Items() {
		genre[it.ID] = it.Meta.Categories[0]
		if titles[it.Meta.Title] {
			t.Fatalf("duplicate title %q", it.Meta.Title)
		}
		titles[it.Meta.Title] = true
	}
	for _, c := range w.Canvases() {
		for i := range 20 {
			ctx, relevant := w.Query(c, i)
			if ctx["user_id"] == "" || len(relevant) == 0 {
				t.Fatalf("%s query %d: ctx %v, %d relevant", c, i, ctx, len(relevant))
			}
			ctx2, relevant2 := w.Query(c, i)
			if !reflect.DeepEqual(ctx, ctx2) || !reflect.DeepEqual(relevant, relevant2) || !reflect.DeepEqual(ctx, w.QueryContext(c, i)) {
				t.Fatalf("%s query %d not deterministic, or QueryContext differs", c, i)
			}
			want := relevantGenre(w, ingest.Event{Canvas: c, Context: ctx})
			n := 0
			for id, g := range genre {
				if g == want {
					n++
					if !relevant[id] {
						t.Fatalf("%s query %d: item %s of %s missing", c, i, id, g)
					}
				}
			}
			if n != len(relevant) {
				t.Fatalf("%s query %d: %d relevant, want %d", c, i, len(relevant), n)
			}
			if q := ctx["query"]; q != "" {
				// Every query word is in the title of some relevant item.
				for _, word := range strings.Fields(q) {
					found := false
					for _, it := range w.Items() {
						if relevant[it.ID] && contains(strings.Fields(strings.ToLower(it.Meta.Title)), word) {
							found = true
							break
						}
					}
					if !found {
						t.Fatalf("query word %q in no relevant title", word)
					}
				}
			}
		}
	}
	if ctx, rel := w.Query("nope", 0); ctx != nil || rel != nil || w.QueryContext("nope", 0) != nil {
		t.Fatal("unknown canvas should return nil")
	}
}

func TestVocabulariesDisjoint(t *testing.T) {
	w := NewWorld(Options{Seed: 5, Groups: 20})
	owner := map[string]string{}
	genres := map[string]bool{}
	for _, g := range w.Genres() {
		if genres[g] {
			t.Fatalf("duplicate genre %q", g)
		}
		genres[g] = true
		for _, word := range w.Vocabulary(g) {
			if o, ok := owner[word]; ok {
				t.Fatalf("word %q shared by %s and %s", word, o, g)
			}
			owner[word] = g
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// IDPrefix prefixes every event and request id, and changes nothing else.
func TestIDPrefix(t *testing.T) {
	plain := generate(NewWorld(Options{Seed: 3}), 20)
	pre := generate(NewWorld(Options{Seed: 3, IDPrefix: "run7-"}), 20)
	if len(plain) != len(pre) {
		t.Fatalf("%d events with a prefix, %d without", len(pre), len(plain))
	}
	for i := range pre {
		if pre[i].EventID != "run7-"+plain[i].EventID || pre[i].RequestID != "run7-"+plain[i].RequestID {
			t.Fatalf("event %d: ids %q/%q, want run7- before %q/%q", i, pre[i].EventID, pre[i].RequestID, plain[i].EventID, plain[i].RequestID)
		}
		pre[i].EventID, pre[i].RequestID = plain[i].EventID, plain[i].RequestID
	}
	if !reflect.DeepEqual(pre, plain) {
		t.Error("the prefix changed more than the ids")
	}
}
