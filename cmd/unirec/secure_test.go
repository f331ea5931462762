package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream/streamtest"
)

// `unirec run` on a fresh data dir, with no key or token configured, is
// secure by default: it generates a snapshot key and an admin token in
// data_dir/secrets (mode 0600), says where in its banner, signs every
// snapshot (`unirec snapshot list` finds the key in the data dir and checks
// each signature), refuses an unsigned control record, and its admin
// endpoints want the generated token.
func TestRunIsSecureByDefault(t *testing.T) {
	dir := t.TempDir()
	s := startSystem(t, dir)
	key, token := filepath.Join(dir, "secrets", "snapshot.key"), filepath.Join(dir, "secrets", "admin.token")
	for _, f := range []string{key, token} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want a file of mode 0600", f, st, err)
		}
	}
	streamtest.WaitFor(t, 10*time.Second, "the banner", func() bool { return strings.Contains(s.log.String(), "Stop with Ctrl-C") })
	secret, _ := os.ReadFile(token)
	if log := s.log.String(); !strings.Contains(log, "signed and verified with the HMAC key in "+key) || strings.Contains(log, strings.TrimSpace(string(secret))) {
		t.Fatalf("the banner does not say where the key is, or prints the token:\n%s", log)
	}
	streamtest.WaitFor(t, 60*time.Second, "two model versions from the demo events", func() bool { return len(getModel(s.api).Recent) >= 2 })

	out, err := exec.Command(unirecBin, "snapshot", "list", "--json", "--brokers", s.broker, "--data-dir", dir).Output()
	if err != nil {
		t.Fatalf("snapshot list: %v\n%s", err, out)
	}
	var entries []snapshot.Entry
	if err := json.Unmarshal(out, &entries); err != nil || len(entries) == 0 {
		t.Fatalf("snapshot list --json: %v\n%s", err, out)
	}
	for _, e := range entries {
		if e.Kind != snapshot.EntryIncomplete && (e.Signature != snapshot.SignatureValid || !e.Usable) {
			t.Errorf("snapshot at offset %d: signature %s, usable %v; want every one signed with the generated key", e.Offset, e.Signature, e.Usable)
		}
	}

	// An unsigned rollback (from a config that writes snapshot.insecure) is refused.
	insecure := writeFile(t, "snapshot:\n  insecure: true\n")
	target := getModel(s.api).Recent[0]
	if out, err := exec.Command(unirecBin, "snapshot", "rollback", "--to", fmt.Sprint(target), "--config", insecure, "--brokers", s.broker).CombinedOutput(); err != nil {
		t.Fatalf("unsigned rollback command: %v\n%s", err, out)
	}
	streamtest.WaitFor(t, 20*time.Second, "the unsigned control record to be refused", func() bool {
		return s.metric(t, `unirec_snapshot_rejected_total{reason="unauthenticated"}`) >= 1
	})
	if getModel(s.api).Held {
		t.Fatal("an unsigned control record rolled the replica back")
	}

	if code := postResume(t, s.api, ""); code != http.StatusUnauthorized {
		t.Errorf("admin resume without a token: %d, want 401", code)
	}
	if code := postResume(t, s.api, strings.TrimSpace(string(secret))); code != http.StatusOK {
		t.Errorf("admin resume with the generated token: %d, want 200", code)
	}
}
