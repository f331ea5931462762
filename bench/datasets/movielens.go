package datasets

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// MovieLens is the MovieLens "ml-latest-small" data set.
type MovieLens struct {
	Movies  map[int]Movie
	Ratings []Rating // in file order
	Tags    []Tag    // in file order
}

// Movie is one row of movies.csv.
type Movie struct {
	ID     int
	Title  string
	Genres []string // empty for "(no genres listed)"
}

// Rating is one row of ratings.csv.
type Rating struct {
	User, Movie int
	Stars       float64
	Time        time.Time
}

// Tag is one row of tags.csv.
type Tag struct {
	User, Movie int
	Text        string
	Time        time.Time
}

// LoadMovieLens reads movies.csv, ratings.csv and tags.csv from dir.
func LoadMovieLens(dir string) (*MovieLens, error) {
	m := &MovieLens{Movies: map[int]Movie{}}
	err := readCSV(filepath.Join(dir, "movies.csv"), 3, func(rec []string) error {
		id, err := strconv.Atoi(rec[0])
		if err != nil {
			return fmt.Errorf("movieId %q: %w", rec[0], err)
		}
		mv := Movie{ID: id, Title: rec[1]}
		if rec[2] != "(no genres listed)" {
			mv.Genres = strings.Split(rec[2], "|")
		}
		m.Movies[id] = mv
		return nil
	})
	if err == nil {
		err = readCSV(filepath.Join(dir, "ratings.csv"), 4, func(rec []string) error {
			r, err := parseRating(rec)
			m.Ratings = append(m.Ratings, r)
			return err
		})
	}
	if err == nil {
		err = readCSV(filepath.Join(dir, "tags.csv"), 4, func(rec []string) error {
			u, e1 := strconv.Atoi(rec[0])
			mv, e2 := strconv.Atoi(rec[1])
			ts, e3 := strconv.ParseInt(rec[3], 10, 64)
			if e1 != nil || e2 != nil || e3 != nil {
				return fmt.Errorf("bad tag row %q", rec)
			}
			m.Tags = append(m.Tags, Tag{User: u, Movie: mv, Text: rec[2], Time: time.Unix(ts, 0).UTC()})
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load MovieLens from %q: %w", dir, err)
	}
	return m, nil
}

func parseRating(rec []string) (Rating, error) {
	u, e1 := strconv.Atoi(rec[0])
	mv, e2 := strconv.Atoi(rec[1])
	stars, e3 := strconv.ParseFloat(rec[2], 64)
	ts, e4 := strconv.ParseInt(rec[3], 10, 64)
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil {
		return Rating{}, fmt.Errorf("bad rating row %q", rec)
	}
	return Rating{User: u, Movie: mv, Stars: stars, Time: time.Unix(ts, 0).UTC()}, nil
}

// readCSV calls fn for every row after the header of a CSV file with at
// least cols columns.
func readCSV(path string, cols int, fn func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	if _, err := r.Read(); err != nil {
		return fmt.Errorf("%s: header: %w", path, err)
	}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if len(rec) < cols {
			return fmt.Errorf("%s:%d: %d columns, want %d", path, line, len(rec), cols)
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
	}
}

// Action maps a star rating to an action: 4 stars and more is a play (the
// positive engagement), 3 to 3.5 a click (a weaker positive), 2.5 and less
// an explicit dismiss.
func Action(stars float64) string {
	switch {
	case stars >= 4:
		return "play"
	case stars >= 3:
		return "click"
	}
	return "dismiss"
}

// Events derives the events of the four canvases, in event-time order (ties
// in file order), all engagement-only (no impressions):
//
//   - notifications: every rating, as its Action;
//   - related_items: every rating after a user's first, with the user's
//     previous movie as source_item_id;
//   - category_exploration: every rating of 4 stars or more of a movie with
//     genres, with one of its genres (chosen by the row) as the category;
//   - search: every tag, its text as the query, as a click.
//
// Items carry their metadata (type video, title, genres). A non-zero rebase
// shifts all event times so that the last one falls on it, keeping order
// and spacing.
func (m *MovieLens) Events(rebase time.Time) []ingest.Event {
	type timed struct {
		t   time.Time
		seq int
		ev  ingest.Event
	}
	var all []timed
	add := func(t time.Time, ev ingest.Event) {
		ev.Time = t
		all = append(all, timed{t: t, seq: len(all), ev: ev})
	}
	prev := map[int]int{}
	order := m.ratingOrder()
	for _, i := range order {
		r := m.Ratings[i]
		user := "u-" + strconv.Itoa(r.User)
		act := Action(r.Stars)
		add(r.Time, m.event(fmt.Sprintf("ml-n-%d", i), "notifications", act, r.Movie, map[string]string{"user_id": user}))
		if p, ok := prev[r.User]; ok {
			add(r.Time, m.event(fmt.Sprintf("ml-r-%d", i), "related_items", act, r.Movie,
				map[string]string{"user_id": user, "source_item_id": "m-" + strconv.Itoa(p)}))
		}
		prev[r.User] = r.Movie
		if g := m.Movies[r.Movie].Genres; r.Stars >= 4 && len(g) > 0 {
			add(r.Time, m.event(fmt.Sprintf("ml-c-%d", i), "category_exploration", act, r.Movie,
				map[string]string{"user_id": user, "category": g[i%len(g)]}))
		}
	}
	for i, tg := range m.Tags {
		add(tg.Time, m.event(fmt.Sprintf("ml-s-%d", i), "search", "click", tg.Movie,
			map[string]string{"user_id": "u-" + strconv.Itoa(tg.User), "query": tg.Text}))
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].t.Before(all[b].t) })
	out := make([]ingest.Event, len(all))
	for i, x := range all {
		out[i] = x.ev
	}
	RebaseTo(out, rebase)
	return out
}

// ratingOrder returns rating indexes in time order, ties in file order.
func (m *MovieLens) ratingOrder() []int {
	idx := make([]int, len(m.Ratings))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return m.Ratings[idx[a]].Time.Before(m.Ratings[idx[b]].Time) })
	return idx
}

func (m *MovieLens) event(id, canvas, action string, movie int, ctx map[string]string) ingest.Event {
	mv := m.Movies[movie]
	return ingest.Event{EventID: id, Canvas: canvas, Action: action, ItemID: "m-" + strconv.Itoa(movie), Context: ctx,
		Item: &stream.ItemMeta{Type: "video", Title: mv.Title, Categories: mv.Genres}}
}
