package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/unirec/unirec/deploy/pipeline"
)

// Every package has a doc comment saying what it owns.
func TestEveryPackageHasADocComment(t *testing.T) {
	dirs := map[string]bool{}
	filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	for dir := range dirs {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi fs.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, pkg := range pkgs {
			documented := false
			for _, f := range pkg.Files {
				documented = documented || f.Doc != nil
			}
			if !documented {
				t.Errorf("package %s in %s has no doc comment", name, dir)
			}
		}
	}
}

// topics check prints the configs a topic needs as key=value, not as a Go map.
func TestTopicsCheckConfigText(t *testing.T) {
	if got := configText(nil); got != "" {
		t.Errorf("no configs: got %q", got)
	}
	if got, want := configText(map[string]string{"retention.ms": "3600000", "max.message.bytes": "1048576"}), " max.message.bytes=1048576 retention.ms=3600000"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// The query `unirec run` suggests works as printed: with the API token's
// header when one is configured, and the demo line says whether it is on.
func TestWelcomeQueryBearsTheToken(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	if w := welcome("b:9092", "127.0.0.1:8080", cfg); strings.Contains(w, "Authorization") || !strings.Contains(w, "on (50 requests/s)") ||
		!strings.Contains(w, "topics: unirec.events and unirec.catalog (in), unirec.examples,") {
		t.Errorf("defaults:\n%s", w)
	}
	cfg.Demo.Enabled = false
	cfg.Serve.APITokenFile = "/etc/unirec/api-token"
	if w := welcome("b:9092", "127.0.0.1:8080", cfg); !strings.Contains(w, `curl -s -H "Authorization: Bearer $(cat /etc/unirec/api-token)" 127.0.0.1:8080/v1/recommend`) || !strings.Contains(w, "Demo events:              off\n") {
		t.Errorf("token file, demo off:\n%s", w)
	}
	cfg.Serve.APITokenFile, cfg.Serve.APITokenEnv = "", "UNIREC_API_TOKEN"
	if w := welcome("b:9092", "127.0.0.1:8080", cfg); !strings.Contains(w, `-H "Authorization: Bearer $UNIREC_API_TOKEN"`) {
		t.Errorf("token env:\n%s", w)
	}
}

// The banner of `unirec run` says where its (generated) snapshot key and
// admin token are, never what they are, and its admin command bears the
// token.
func TestWelcomeSaysWhereTheSecretsAre(t *testing.T) {
	cfg := pipeline.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Role = pipeline.RoleAll
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	w := welcome("b:9092", "127.0.0.1:8080", cfg)
	key, token := filepath.Join(cfg.DataDir, "secrets", "snapshot.key"), filepath.Join(cfg.DataDir, "secrets", "admin.token")
	for _, want := range []string{
		"Snapshots:                signed and verified with the HMAC key in " + key,
		"Admin API:                http://127.0.0.1:8080/admin/rollback, /admin/resume (token in " + token + ")",
		`curl -s -X POST -H "Authorization: Bearer $(cat ` + token + `)" 127.0.0.1:8080/admin/resume`,
	} {
		if !strings.Contains(w, want) {
			t.Errorf("missing %q in:\n%s", want, w)
		}
	}
	if strings.Contains(w, string(cfg.Secrets.SnapshotKey)) || strings.Contains(w, string(cfg.Secrets.AdminToken)) {
		t.Errorf("the banner prints a secret:\n%s", w)
	}
	cfg.Snapshot.HMACKeyFile, cfg.Snapshot.Insecure = "", true
	if w := welcome("b:9092", "127.0.0.1:8080", cfg); !strings.Contains(w, "Snapshots:                NOT authenticated (snapshot.insecure: true)") {
		t.Errorf("insecure:\n%s", w)
	}
}
