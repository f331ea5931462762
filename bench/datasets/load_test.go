package datasets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --path may name the shared data directory or the data set itself; without
// it, a working directory outside a repository next to ../shared/data gets
// an error saying what to pass.
func TestDatasetPath(t *testing.T) {
	data := t.TempDir()
	os.MkdirAll(filepath.Join(data, "movielens-small"), 0o755)
	os.MkdirAll(filepath.Join(data, "open-bandit"), 0o755)
	os.WriteFile(filepath.Join(data, "open-bandit", "random_men_men.csv"), nil, 0o644)
	for _, c := range []struct{ name, path, want string }{
		{"movielens", data, filepath.Join(data, "movielens-small")},
		{"movielens", filepath.Join(data, "movielens-small"), filepath.Join(data, "movielens-small")},
		{"openbandit", data, filepath.Join(data, "open-bandit", "random_men_men.csv")},
		{"openbandit", "/some/file.csv", "/some/file.csv"},
	} {
		if got, err := Path(c.name, c.path); err != nil || got != c.want {
			t.Errorf("Path(%s, %s) = %q, %v; want %q", c.name, c.path, got, err, c.want)
		}
	}
	repo := t.TempDir() // a repository with no ../shared/data next to it
	os.WriteFile(filepath.Join(repo, "go.mod"), []byte("module x\n"), 0o644)
	t.Chdir(repo)
	_, err := Path("movielens", "")
	if err == nil || !strings.Contains(err.Error(), "pass --path with the shared data directory") {
		t.Errorf("got %v, want an error saying what --path takes", err)
	}
}
