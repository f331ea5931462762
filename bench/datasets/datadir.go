package datasets

import (
	"errors"
	"os"
	"path/filepath"
)

// SharedDataDir finds ../shared/data next to the repository root that
// contains dir (or one of its parents): where the project's real data sets
// live on developer and CI machines.
func SharedDataDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			data := filepath.Join(d, "..", "shared", "data")
			if _, err := os.Stat(data); err != nil {
				return "", errors.New("no ../shared/data next to the repository at " + d)
			}
			return data, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + abs)
		}
	}
}
