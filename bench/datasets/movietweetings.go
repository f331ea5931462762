package datasets

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// MovieTweetings is a MovieTweetings snapshot (Dooms et al., CrowdRec 2013;
// github.com/sidooms/MovieTweetings, MIT licence): IMDb ratings from 0 to
// 10 that users tweeted, with the movies' titles and genres.
type MovieTweetings struct {
	Movies  map[string]Movie // by IMDb id, as in the files ("0114508")
	Ratings []TweetRating    // in file order
}

// TweetRating is one row of ratings.dat.
type TweetRating struct {
	User   string
	Movie  string
	Rating int // 0 to 10
	Time   time.Time
}

// LoadMovieTweetings reads movies.dat and ratings.dat ("::"-separated) from
// dir.
func LoadMovieTweetings(dir string) (*MovieTweetings, error) {
	m := &MovieTweetings{Movies: map[string]Movie{}}
	err := readDat(filepath.Join(dir, "movies.dat"), 2, func(f []string) error {
		mv := Movie{Title: f[1]}
		if len(f) > 2 && f[2] != "" {
			mv.Genres = strings.Split(f[2], "|")
		}
		m.Movies[f[0]] = mv
		return nil
	})
	if err == nil {
		err = readDat(filepath.Join(dir, "ratings.dat"), 4, func(f []string) error {
			r, e1 := strconv.Atoi(f[2])
			ts, e2 := strconv.ParseInt(f[3], 10, 64)
			if e1 != nil || e2 != nil || r < 0 || r > 10 {
				return fmt.Errorf("bad rating row %q", f)
			}
			m.Ratings = append(m.Ratings, TweetRating{User: f[0], Movie: f[1], Rating: r, Time: time.Unix(ts, 0).UTC()})
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load MovieTweetings from %q: %w", dir, err)
	}
	return m, nil
}

// readDat calls fn with the "::"-separated fields of every non-empty line of
// a file, which must have at least cols fields.
func readDat(path string, cols int, fn func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if sc.Text() == "" {
			continue
		}
		fields := strings.Split(sc.Text(), "::")
		if len(fields) < cols {
			return fmt.Errorf("%s:%d: %d fields, want %d", path, line, len(fields), cols)
		}
		if err := fn(fields); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
	return sc.Err()
}

// TweetAction maps a 0-10 rating to an action as Action does 5 stars: 8 and
// more is a play, 6 and 7 a click, 5 and less a dismiss.
func TweetAction(rating int) string {
	switch {
	case rating >= 8:
		return "play"
	case rating >= 6:
		return "click"
	}
	return "dismiss"
}

// Events derives the four canvases, in event-time order (ties in file
// order), all engagement-only:
//
//   - notifications: every rating, as its TweetAction;
//   - related_items: every rating after a user's first, with the user's
//     previous movie as source_item_id;
//   - category_exploration: every rating of 8 or more of a movie with
//     genres, with one of its genres (chosen by the row) as the category;
//   - search: every rating of 8 or more, as a click, with one word of the
//     movie's title as the query (TitleWords, chosen by the row): the data
//     set has no query text, so the query is a word the user would type to
//     find the movie.
//
// Item ids are "tt" + the IMDb id; items carry type video, title, genres.
// A non-zero rebase shifts all times so the last event falls on it.
func (m *MovieTweetings) Events(rebase time.Time) []ingest.Event {
	order := make([]int, len(m.Ratings))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return m.Ratings[order[a]].Time.Before(m.Ratings[order[b]].Time) })
	var out []ingest.Event
	prev := map[string]string{}
	for _, i := range order {
		r := m.Ratings[i]
		user, act := "u-"+r.User, TweetAction(r.Rating)
		out = append(out, m.event(fmt.Sprintf("mt-n-%d", i), "notifications", act, r, map[string]string{"user_id": user}))
		if p, ok := prev[r.User]; ok {
			out = append(out, m.event(fmt.Sprintf("mt-r-%d", i), "related_items", act, r, map[string]string{"user_id": user, "source_item_id": "tt" + p}))
		}
		prev[r.User] = r.Movie
		if r.Rating < 8 {
			continue
		}
		mv := m.Movies[r.Movie]
		if g := mv.Genres; len(g) > 0 {
			out = append(out, m.event(fmt.Sprintf("mt-c-%d", i), "category_exploration", act, r, map[string]string{"user_id": user, "category": g[i%len(g)]}))
		}
		if w := TitleWords(mv.Title); len(w) > 0 {
			out = append(out, m.event(fmt.Sprintf("mt-s-%d", i), "search", "click", r, map[string]string{"user_id": user, "query": w[i%len(w)]}))
		}
	}
	RebaseTo(out, rebase)
	return out
}

func (m *MovieTweetings) event(id, canvas, action string, r TweetRating, ctx map[string]string) ingest.Event {
	mv := m.Movies[r.Movie]
	return ingest.Event{EventID: id, Time: r.Time, Canvas: canvas, Action: action, ItemID: "tt" + r.Movie, Context: ctx,
		Item: &stream.ItemMeta{Type: "video", Title: mv.Title, Categories: mv.Genres}}
}

// titleStopWords are words too common to be a query on their own.
var titleStopWords = map[string]bool{"the": true, "and": true, "of": true, "a": true, "an": true, "in": true, "to": true,
	"for": true, "on": true, "with": true, "from": true, "at": true, "by": true, "la": true, "le": true, "les": true,
	"der": true, "die": true, "das": true, "el": true, "los": true, "part": true}

// TitleWords are the query words of a title: lower-case runs of letters
// and digits of at least 3 characters, without stop words, numbers (the
// year) or repeats, in title order.
func TitleWords(title string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(title), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if _, err := strconv.Atoi(w); err == nil || len([]rune(w)) < 3 || titleStopWords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}
