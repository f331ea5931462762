package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
)

// SynthRequests is the size of the synth data set: a planted-truth
// world's requests, 100 ms apart, ending now.
const SynthRequests = 6000

// files is where each downloadable data set lives inside the shared data
// directory, and what a path may name instead.
var files = map[string]struct{ sub, what string }{
	"movielens":      {"movielens-small", "movielens-small directory (ratings.csv, movies.csv, tags.csv)"},
	"openbandit":     {filepath.Join("open-bandit", "random_men_men.csv"), "random_men_men.csv file"},
	"movietweetings": {"movietweetings-100k", "MovieTweetings snapshot directory (ratings.dat, movies.dat), e.g. snapshots/100K of github.com/sidooms/MovieTweetings"},
}

// Path is where data set name (movielens or openbandit) is read from:
// path as given, or the data set inside it when it is the shared data
// directory (holding movielens-small/ and open-bandit/), or inside
// ../shared/data next to the repository holding the working directory
// when path is empty.
func Path(name, path string) (string, error) {
	f := files[name]
	if path == "" {
		dir, err := SharedDataDir(".")
		if err != nil {
			return "", fmt.Errorf("cannot find the %s data set: %v; pass --path with the shared data directory (holding %s) or the %s", name, err, f.sub, f.what)
		}
		return filepath.Join(dir, f.sub), nil
	}
	if _, err := os.Stat(filepath.Join(path, f.sub)); err == nil {
		return filepath.Join(path, f.sub), nil
	}
	return path, nil
}

// Load returns the events of data set name (movielens, movietweetings,
// openbandit or synth) from path (see Path), in event-time order. With rebase, event
// times are shifted so the last one is now (movielens, openbandit); synth
// always ends now.
func Load(name, path string, rebase bool) ([]ingest.Event, error) {
	if _, ok := files[name]; ok {
		p, err := Path(name, path)
		if err != nil {
			return nil, err
		}
		path = p
	}
	now := time.Time{}
	if rebase || name == "synth" {
		now = time.Now().UTC()
	}
	switch name {
	case "movielens":
		ml, err := LoadMovieLens(path)
		if err != nil {
			return nil, err
		}
		return ml.Events(now), nil
	case "movietweetings":
		mt, err := LoadMovieTweetings(path)
		if err != nil {
			return nil, err
		}
		return mt.Events(now), nil
	case "openbandit":
		rows, err := LoadOpenBandit(path)
		if err != nil {
			return nil, err
		}
		evs := OpenBanditEvents(rows)
		RebaseTo(evs, now)
		return evs, nil
	case "synth":
		w := synth.NewWorld(synth.Options{Seed: 1, Start: now.Add(-SynthRequests * 100 * time.Millisecond), IDPrefix: synth.RunIDPrefix("synth", now)})
		var evs []ingest.Event
		for i := 0; i < SynthRequests; i++ {
			evs = append(evs, w.Next()...)
		}
		return evs, nil
	}
	return nil, fmt.Errorf("--dataset must be movielens, movietweetings, openbandit, synth or jsonl, got %q", name)
}
