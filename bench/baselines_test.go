package bench

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
)

// plantedLog builds a training log from lines "canvas user item [field=value...]",
// every one a play, one second apart.
func plantedLog(lines ...string) []ingest.Event {
	var evs []ingest.Event
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, l := range lines {
		var canvas, user, item, extra string
		n, _ := fmt.Sscan(l, &canvas, &user, &item, &extra)
		ctx := map[string]string{"user_id": user}
		if n == 4 {
			for j := range len(extra) {
				if extra[j] == '=' {
					ctx[extra[:j]] = extra[j+1:]
					break
				}
			}
		}
		evs = append(evs, ingest.Event{EventID: fmt.Sprint(i), Canvas: canvas, Action: "play", ItemID: item, Context: ctx, Time: t0.Add(time.Duration(i) * time.Second)})
	}
	return evs
}

func repeat(n int, line string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = line
	}
	return out
}

func baselineByName(t *testing.T, train []ingest.Event, name string) Baseline {
	t.Helper()
	// Two factors: the planted ALS log has two taste groups.
	for _, b := range NewBaselines(train, ALSOptions{Factors: 2, Iterations: 15}) {
		if b.Name() == name {
			return b
		}
	}
	t.Fatalf("no baseline %q", name)
	return nil
}

// ask returns a baseline's top k for a query event (canvas user [field=value]).
func ask(t *testing.T, b Baseline, k int, exclude []string, canvas string, ctx map[string]string, candidates ...string) ([]string, []float64) {
	t.Helper()
	ex := map[string]bool{}
	for _, id := range exclude {
		ex[id] = true
	}
	if s := ctx["source_item_id"]; s != "" {
		ex[s] = true
	}
	return b.Answer(BaselineQuery{Event: ingest.Event{Canvas: canvas, Context: ctx}, K: k, Exclude: ex, Candidates: candidates})
}

func TestContextPopularityRanksWithinTheContextThenGlobally(t *testing.T) {
	var lines []string
	lines = append(lines, repeat(3, "search u1 jazz1 query=Jazz")...)
	lines = append(lines, "search u2 jazz2 query=jazz")
	lines = append(lines, repeat(2, "search u3 rock1 query=rock")...)
	lines = append(lines, repeat(5, "notifications u4 hit")...)
	lines = append(lines, repeat(4, "category_exploration u5 drama1 category=Drama")...)
	b := baselineByName(t, plantedLog(lines...), "context-popularity")

	f := func(canvas string, ctx map[string]string, exclude []string, want ...string) {
		t.Helper()
		got, _ := ask(t, b, len(want), exclude, canvas, ctx)
		if !slices.Equal(got, want) {
			t.Errorf("%s %v excluding %v: got %v, want %v", canvas, ctx, exclude, got, want)
		}
	}
	// The query is normalized; the context's items first, then global popularity.
	f("search", map[string]string{"user_id": "x", "query": "  JAZZ "}, nil, "jazz1", "jazz2", "hit")
	f("search", map[string]string{"user_id": "x", "query": "jazz"}, []string{"jazz1"}, "jazz2", "hit", "drama1")
	f("search", map[string]string{"user_id": "x", "query": "rock"}, nil, "rock1", "hit")
	// An unseen context is global popularity.
	f("search", map[string]string{"user_id": "x", "query": "polka"}, nil, "hit", "drama1", "jazz1")
	f("category_exploration", map[string]string{"user_id": "x", "category": "drama"}, nil, "drama1", "hit")
	// A canvas with only the user is that canvas' popularity.
	f("notifications", map[string]string{"user_id": "x"}, nil, "hit", "drama1")

	_, scores := ask(t, b, 3, nil, "search", map[string]string{"user_id": "x", "query": "jazz"}, "jazz2", "hit", "rock1", "unknown")
	if !(scores[0] > scores[1] && scores[1] > scores[2] && scores[2] > scores[3]) {
		t.Errorf("candidate scores %v, want jazz2 (in context) > hit (most popular) > rock1 > unknown", scores)
	}
}

func TestItemKNNFindsCoEngagedItems(t *testing.T) {
	var lines []string
	for _, u := range []string{"u1", "u2", "u3"} {
		lines = append(lines, "notifications "+u+" a", "notifications "+u+" b")
	}
	lines = append(lines, "notifications u1 c") // c co-occurs with a and b once
	lines = append(lines, "notifications u4 x", "notifications u4 y", "notifications u5 x", "notifications u5 y")
	lines = append(lines, "notifications u6 y")
	lines = append(lines, repeat(6, "notifications u7 pop")...)
	b := baselineByName(t, plantedLog(lines...), "item-knn")

	got, scores := ask(t, b, 3, nil, "related_items", map[string]string{"user_id": "u9", "source_item_id": "a"}, "b", "c", "x", "pop")
	if !slices.Equal(got, []string{"b", "c", "pop"}) {
		t.Errorf("related to a: got %v, want b (3 co-engagements), c (1), then pop (backfill)", got)
	}
	if !(scores[0] > scores[1] && scores[1] > scores[2]) {
		t.Errorf("candidate scores %v, want b > c > x", scores)
	}
	// A user's recent items vote for their neighbours; seen items stay out.
	got, _ = ask(t, b, 2, []string{"y"}, "notifications", map[string]string{"user_id": "u6"})
	if !slices.Equal(got, []string{"x", "pop"}) {
		t.Errorf("for u6 (who engaged y): got %v, want x (co-engaged with y), then pop", got)
	}
}

func TestALSSeparatesPlantedTasteGroups(t *testing.T) {
	// Ten users like items A0-A4, ten like B0-B4; each user misses one item
	// of their group.
	var lines []string
	for u := range 20 {
		group := "A"
		if u >= 10 {
			group = "B"
		}
		for i := range 5 {
			if i != u%5 {
				lines = append(lines, fmt.Sprintf("notifications u%d %s%d", u, group, i))
			}
		}
	}
	b := baselineByName(t, plantedLog(lines...), "als")

	// u12 (group B) misses B2 and has engaged the other B items.
	seen := []string{"B0", "B1", "B3", "B4"}
	got, scores := ask(t, b, 1, seen, "notifications", map[string]string{"user_id": "u12"}, "B2", "A0", "A1", "A2")
	if !slices.Equal(got, []string{"B2"}) {
		t.Errorf("for u12: got %v, want B2, the one item of its group it has not seen", got)
	}
	if scores[0] <= max(scores[1], scores[2], scores[3]) {
		t.Errorf("candidate scores %v, want B2 above every A item", scores)
	}
	got, _ = ask(t, b, 4, nil, "related_items", map[string]string{"user_id": "new", "source_item_id": "B1"})
	slices.Sort(got)
	if !slices.Equal(got, []string{"B0", "B2", "B3", "B4"}) {
		t.Errorf("related to B1: got %v, want the other B items", got)
	}
	// An unknown user gets global popularity.
	got, _ = ask(t, b, 1, nil, "notifications", map[string]string{"user_id": "nobody"})
	if !slices.Equal(got, []string{"A0"}) {
		t.Errorf("for an unknown user: got %v, want A0, the most popular (ties by id)", got)
	}
}

func TestCanvasPopularityIsPerCanvasWithoutBackfill(t *testing.T) {
	lines := append(repeat(3, "search u1 s1 query=a"), "search u2 s2 query=b")
	lines = append(lines, repeat(9, "notifications u3 n1")...)
	b := baselineByName(t, plantedLog(lines...), "popularity")
	got, scores := ask(t, b, 5, nil, "search", map[string]string{"user_id": "x", "query": "zzz"}, "s1", "s2", "n1")
	if !slices.Equal(got, []string{"s1", "s2"}) || !slices.Equal(scores, []float64{3, 1, 0}) {
		t.Errorf("search: got %v scored %v, want [s1 s2] scored [3 1 0]", got, scores)
	}
}

func TestLiveChunksAndExclusions(t *testing.T) {
	// A period of 10 events in 3 chunks: [0,3) [3,6) [6,10).
	for at, want := range []int{0, 0, 0, 3, 3, 3, 6, 6, 6, 6} {
		if got := chunkStart(at, 10, 3); got != want {
			t.Errorf("chunkStart(%d, 10, 3) = %d, want %d", at, got, want)
		}
	}
	evs := plantedLog("notifications u1 a", "notifications u2 b", "notifications u1 c", "notifications u1 a")
	evs[2].Action = "dismiss"
	hist := []string{"h"}
	if got := seenBefore(hist, "u1", evs); !slices.Equal(got, []string{"h", "a"}) || len(hist) != 1 {
		t.Errorf("seenBefore = %v (history %v), want [h a] and the history untouched", got, hist)
	}
}
