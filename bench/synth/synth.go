// Package synth generates realistic interaction events for every canvas from a
// planted ground truth, for the demo mode, end-to-end tests and benchmarks.
//
// A World has latent taste groups. Each group has a human-looking genre name
// ("Documentary", "Comedy", ...) and a small title vocabulary that no other
// group shares. Every item belongs to one group (its category is the group's
// genre and its title uses two of the group's words plus a word unique to the
// item) and every user has a favourite group. Each request has a relevant
// group, derived from the truth and visible in the context the canvas sends:
//
//   - notifications: the user's favourite group;
//   - related_items: the group of source_item_id;
//   - search: the group whose vocabulary the query words come from;
//   - category_exploration: the group whose genre is the category.
//
// For the last three the group is the user's favourite half of the time and
// a random group otherwise (ExploreProb), so the explicit context matters.
//
// Users click items of the relevant group with probability about 0.6 and any
// other item with probability about 0.03; some clicks are followed by a play.
// Everything is deterministic for a seed.
package synth

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// Canvas names.
const (
	CanvasNotifications       = "notifications"
	CanvasRelatedItems        = "related_items"
	CanvasSearch              = "search"
	CanvasCategoryExploration = "category_exploration"
)

var canvases = []string{CanvasNotifications, CanvasRelatedItems, CanvasSearch, CanvasCategoryExploration}

// Engagement probabilities of the planted truth.
const (
	ClickProbRelevant = 0.6
	ClickProbOther    = 0.03
	// PlayProb is the probability that a click is followed by a play.
	PlayProb = 0.5
	// ExploreProb is the probability that a related_items, search or
	// category_exploration request is about a group other than (or, by
	// chance, equal to) the user's favourite.
	ExploreProb = 0.5
)

// Options configures a World. Zero fields take their defaults.
type Options struct {
	Seed        int64
	Users       int           // default 200
	Items       int           // default 400
	Groups      int           // default 8 (latent taste groups)
	Start       time.Time     // event time of the first request; default 2026-01-01T00:00:00Z
	Step        time.Duration // event-time spacing between consecutive requests; default 100ms
	Impressions int           // items shown per request, default 6
	// IDPrefix is prepended to every event and request id (default none:
	// e-0, r-0, ...). Ingest drops a repeated event id as a duplicate, so
	// a world that produces to a topic another run of it has written (the
	// demo after a restart, a second bench produce) needs a prefix of its
	// own.
	IDPrefix string
}

func (o *Options) fill() {
	if o.Users <= 0 {
		o.Users = 200
	}
	if o.Items <= 0 {
		o.Items = 400
	}
	if o.Groups <= 0 {
		o.Groups = 8
	}
	if o.Groups > o.Items {
		o.Groups = o.Items
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Step <= 0 {
		o.Step = 100 * time.Millisecond
	}
	if o.Impressions <= 0 {
		o.Impressions = 6
	}
}

// Item is one catalog item.
type Item struct {
	ID   string
	Meta stream.ItemMeta
}

type user struct {
	id, country, language string
	fav                   int
}

// World is the planted truth (item -> group, user -> favourite group, group
// genre names and vocabularies) and the state of the event generator.
type World struct {
	o          Options
	rng        *rand.Rand
	genres     []string
	words      [][]string // per group vocabulary, lower case
	items      []Item
	itemGroup  []int
	groupItems [][]int
	users      []user
	userIndex  map[string]int
	itemIndex  map[string]int
	req, ev    int
}

var baseGenres = []string{
	"Documentary", "Comedy", "Sci-Fi", "Drama", "Horror", "Animation", "Romance", "Thriller",
	"Western", "Musical", "Mystery", "Fantasy", "Adventure", "Crime", "Sports", "War",
}

var baseWords = [][]string{
	{"nature", "ocean", "wildlife", "history", "island"},
	{"wedding", "roommates", "vacation", "pranks", "office"},
	{"space", "planet", "galaxy", "robot", "alien"},
	{"family", "secrets", "courtroom", "letters", "inheritance"},
	{"haunted", "curse", "zombie", "cabin", "shadows"},
	{"dragon", "kingdom", "bunny", "pixel", "toys"},
	{"paris", "summer", "kiss", "heart", "proposal"},
	{"heist", "spy", "conspiracy", "hostage", "agent"},
	{"cowboy", "saloon", "sheriff", "desert", "outlaw"},
	{"dance", "broadway", "song", "stage", "chorus"},
	{"detective", "clue", "murder", "manor", "butler"},
	{"wizard", "sword", "elf", "quest", "prophecy"},
	{"jungle", "treasure", "expedition", "volcano", "pirates"},
	{"mafia", "gangster", "cartel", "smuggler", "detectives"},
	{"football", "champion", "marathon", "boxing", "coach"},
	{"battle", "soldier", "trench", "general", "frontline"},
}

// wordsPerGroup is the size of each group's title vocabulary.
const wordsPerGroup = 5

var locales = [][2]string{{"US", "en"}, {"GB", "en"}, {"FR", "fr"}, {"DE", "de"}}

var devices = []string{"tv", "phone", "web"}

// NewWorld plants the truth for o (after filling its defaults). The result
// is fully deterministic for o.Seed.
func NewWorld(o Options) *World {
	o.fill()
	w := &World{
		o:         o,
		rng:       rand.New(rand.NewPCG(uint64(o.Seed), 0x5e7e1)),
		userIndex: map[string]int{},
		itemIndex: map[string]int{},
	}
	used := map[string]bool{}
	for _, ws := range baseWords {
		for _, x := range ws {
			used[x] = true
		}
	}
	fresh := func() string {
		for {
			n := 3 + w.rng.IntN(2)
			var b strings.Builder
			for range n {
				b.WriteByte("bdfgklmnprstvz"[w.rng.IntN(14)])
				b.WriteByte("aeiou"[w.rng.IntN(5)])
			}
			if s := b.String(); !used[s] {
				used[s] = true
				return s
			}
		}
	}
	for g := range o.Groups {
		if g < len(baseGenres) {
			w.genres = append(w.genres, baseGenres[g])
			w.words = append(w.words, baseWords[g])
			continue
		}
		w.genres = append(w.genres, "Genre "+strconv.Itoa(g+1))
		ws := make([]string, wordsPerGroup)
		for k := range ws {
			ws[k] = fresh()
		}
		w.words = append(w.words, ws)
	}
	// Balanced, shuffled item -> group assignment: every group has items.
	perm := w.rng.Perm(o.Items)
	w.groupItems = make([][]int, o.Groups)
	for i := range o.Items {
		g := perm[i] % o.Groups
		w.itemGroup = append(w.itemGroup, g)
		w.groupItems[g] = append(w.groupItems[g], i)
		vocab := w.words[g]
		a := w.rng.IntN(len(vocab))
		b := (a + 1 + w.rng.IntN(len(vocab)-1)) % len(vocab)
		typ := "video"
		if w.rng.Float64() < 0.1 {
			typ = "game"
		}
		it := Item{ID: "m-" + strconv.Itoa(i), Meta: stream.ItemMeta{
			Type:       typ,
			Title:      titleCase(vocab[a]) + " " + titleCase(vocab[b]) + " " + titleCase(fresh()),
			Categories: []string{w.genres[g]},
		}}
		w.itemIndex[it.ID] = i
		w.items = append(w.items, it)
	}
	for u := range o.Users {
		loc := locales[w.rng.IntN(len(locales))]
		us := user{id: "u-" + strconv.Itoa(u), country: loc[0], language: loc[1], fav: w.rng.IntN(o.Groups)}
		w.userIndex[us.id] = u
		w.users = append(w.users, us)
	}
	return w
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Options returns the options of the world, defaults filled.
func (w *World) Options() Options { return w.o }

// Canvases returns the four canvas names.
func (w *World) Canvases() []string { return append([]string(nil), canvases...) }

// Items returns the catalog.
func (w *World) Items() []Item { return append([]Item(nil), w.items...) }

// Genres returns the genre name of every group.
func (w *World) Genres() []string { return append([]string(nil), w.genres...) }

// Vocabulary returns the title words of the group with the given genre, or nil.
func (w *World) Vocabulary(genre string) []string {
	for g, name := range w.genres {
		if name == genre {
			return append([]string(nil), w.words[g]...)
		}
	}
	return nil
}

// Genre returns the genre of an item, or "" for an unknown item.
func (w *World) Genre(itemID string) string {
	i, ok := w.itemIndex[itemID]
	if !ok {
		return ""
	}
	return w.genres[w.itemGroup[i]]
}

// FavouriteGenre returns the genre of a user's favourite group, or "".
func (w *World) FavouriteGenre(userID string) string {
	u, ok := w.userIndex[userID]
	if !ok {
		return ""
	}
	return w.genres[w.users[u].fav]
}

// context builds the context a canvas sends for user u, and its relevant group.
func (w *World) context(r *rand.Rand, canvas string, u int) (map[string]string, int) {
	us := w.users[u]
	g := us.fav
	// Outside notifications the context names what the user looks for,
	// which is often not their favourite taste: the explicit context must
	// win over the user's history.
	if canvas != CanvasNotifications && r.Float64() < ExploreProb {
		g = r.IntN(len(w.genres))
	}
	ctx := map[string]string{
		"user_id":  us.id,
		"country":  us.country,
		"language": us.language,
		"device":   devices[r.IntN(len(devices))],
	}
	switch canvas {
	case CanvasRelatedItems:
		members := w.groupItems[g]
		ctx["source_item_id"] = w.items[members[r.IntN(len(members))]].ID
	case CanvasSearch:
		vocab := w.words[g]
		a := r.IntN(len(vocab))
		q := vocab[a]
		if r.IntN(2) == 1 {
			q += " " + vocab[(a+1+r.IntN(len(vocab)-1))%len(vocab)]
		}
		ctx["query"] = q
	case CanvasCategoryExploration:
		ctx["category"] = w.genres[g]
	}
	return ctx, g
}

// Next generates one request: a canvas (round-robin), a user and its
// context, Impressions impression events sharing one request id, then the
// engagements ("click", sometimes followed by "play") drawn from the truth.
func (w *World) Next() []ingest.Event {
	r := w.rng
	canvas := canvases[w.req%len(canvases)]
	reqID := w.o.IDPrefix + "r-" + strconv.Itoa(w.req)
	t0 := w.o.Start.Add(time.Duration(w.req) * w.o.Step)
	w.req++
	ctx, g := w.context(r, canvas, r.IntN(len(w.users)))

	// At least half the slots come from the relevant group, the rest at random.
	n := min(w.o.Impressions, len(w.items))
	exclude := -1
	if src, ok := ctx["source_item_id"]; ok {
		exclude = w.itemIndex[src]
		n = min(n, len(w.items)-1)
	}
	shown := make([]int, 0, n)
	seen := map[int]bool{exclude: true}
	members := w.groupItems[g]
	for _, k := range r.Perm(len(members)) {
		if len(shown) >= (n+1)/2 {
			break
		}
		if i := members[k]; !seen[i] {
			seen[i] = true
			shown = append(shown, i)
		}
	}
	for len(shown) < n {
		if i := r.IntN(len(w.items)); !seen[i] {
			seen[i] = true
			shown = append(shown, i)
		}
	}
	r.Shuffle(len(shown), func(a, b int) { shown[a], shown[b] = shown[b], shown[a] })

	events := make([]ingest.Event, 0, 2*n)
	for pos, i := range shown {
		p := int32(pos)
		meta := w.items[i].Meta
		meta.Categories = append([]string(nil), meta.Categories...)
		events = append(events, w.event(t0, canvas, ingest.ActionImpression, reqID, i, &p, ctx, &meta))
	}
	for pos, i := range shown {
		prob := ClickProbOther
		if w.itemGroup[i] == g {
			prob = ClickProbRelevant
		}
		if r.Float64() >= prob {
			continue
		}
		p := int32(pos)
		tc := t0.Add(time.Duration(150+r.IntN(600)) * time.Millisecond)
		events = append(events, w.event(tc, canvas, "click", reqID, i, &p, ctx, nil))
		if r.Float64() < PlayProb {
			tp := tc.Add(time.Duration(100+r.IntN(400)) * time.Millisecond)
			events = append(events, w.event(tp, canvas, "play", reqID, i, &p, ctx, nil))
		}
	}
	return events
}

func (w *World) event(t time.Time, canvas, action, reqID string, item int, pos *int32, ctx map[string]string, meta *stream.ItemMeta) ingest.Event {
	c := make(map[string]string, len(ctx))
	for k, v := range ctx {
		c[k] = v
	}
	e := ingest.Event{
		EventID:   w.o.IDPrefix + "e-" + strconv.Itoa(w.ev),
		Time:      t,
		Canvas:    canvas,
		Action:    action,
		RequestID: reqID,
		ItemID:    w.items[item].ID,
		Position:  pos,
		Context:   c,
		Item:      meta,
	}
	w.ev++
	return e
}

// Query returns the i-th deterministic evaluation query of a canvas: the
// context the canvas would send (user_id always set) and the ids of the
// relevant items (every item of the relevant group). It does not advance the
// event generator. An unknown canvas returns nil, nil.
func (w *World) Query(canvas string, i int) (ctx map[string]string, relevant map[string]bool) {
	ctx, g := w.query(canvas, i)
	if ctx == nil {
		return nil, nil
	}
	relevant = make(map[string]bool, len(w.groupItems[g]))
	for _, it := range w.groupItems[g] {
		relevant[w.items[it].ID] = true
	}
	return ctx, relevant
}

// QueryContext is Query's context alone: the load benchmark's requests,
// without the relevant set (a map of a group's items, hundreds of KB a
// query on a 100,000-item world).
func (w *World) QueryContext(canvas string, i int) map[string]string {
	ctx, _ := w.query(canvas, i)
	return ctx
}

// query returns the context of query i of canvas and its group; nil for
// an unknown canvas.
func (w *World) query(canvas string, i int) (map[string]string, int) {
	ci := -1
	for k, c := range canvases {
		if c == canvas {
			ci = k
		}
	}
	if ci < 0 {
		return nil, 0
	}
	r := rand.New(rand.NewPCG(uint64(w.o.Seed)^0x9e3779b97f4a7c15, uint64(ci)<<32^uint64(uint32(i))))
	return w.context(r, canvas, r.IntN(len(w.users)))
}

// String describes the world's size.
func (w *World) String() string {
	return fmt.Sprintf("synth world: %d users, %d items, %d groups, seed %d", len(w.users), len(w.items), len(w.genres), w.o.Seed)
}

// RunIDPrefix is the event and request id prefix of one run of a
// synthetic world that produces to a shared events topic (kind "demo",
// "produce", ...). Ingest remembers event ids for an hour and drops a
// repeated one as a duplicate: without it, a restarted demo or a second
// bench produce repeats e-0, e-1, ... and nothing it produces is learned.
func RunIDPrefix(kind string, now time.Time) string {
	return fmt.Sprintf("%s-%d-", kind, now.UnixMilli())
}
