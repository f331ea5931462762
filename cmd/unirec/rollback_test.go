package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream/streamtest"
)

// modelState is what GET /v1/model says about versions.
type modelState struct {
	Version int64   `json:"version"`
	Head    int64   `json:"head"`
	Held    bool    `json:"held"`
	Recent  []int64 `json:"recent_versions"`
}

func getModel(api string) modelState {
	var m modelState
	getJSON("http://"+api+"/v1/model", &m)
	return m
}

// postResume posts /admin/resume to the replica at api with bearer as its
// token (none when empty) and returns the status code.
func postResume(t *testing.T, api, bearer string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+api+"/admin/resume", nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// getJSON GETs url into v; an answer other than 200 is an error.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// With signed snapshots, `unirec snapshot rollback --to V` rolls the
// running replica back to V (a control record on the snapshots topic); a
// control record signed with another key is rejected and counted; the
// token-protected admin endpoint resumes the newest version.
func TestRollbackCommandAndAdminResume(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "hmac.key"), []byte("e2e-snapshot-key-0123456789\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "admin.token"), []byte("e2e-admin-token-0123456789\n"), 0o600)
	cfg := filepath.Join(dir, "rollback.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`snapshot:
  interval: 300ms
  hmac_key_file: %s
trainer:
  commit_interval: 300ms
serve:
  keep_versions: 1000
  admin_token_file: %s
`, filepath.Join(dir, "hmac.key"), filepath.Join(dir, "admin.token"))), 0o644)
	var log lockedBuffer
	c, err := bench.StartChild(exec.Command(unirecBin, "run", "--config", cfg, "--data-dir", filepath.Join(dir, "data"),
		"--broker-port=-1", "--listen", "127.0.0.1:0"), &log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			t.Logf("unirec log:\n%s", log.String())
		}
	})
	addrs, err := c.Await(30*time.Second, bench.AddrBroker, bench.AddrHTTP)
	if err != nil {
		t.Fatalf("unirec run: %v\n%s", err, log.String())
	}
	broker, api := addrs[bench.AddrBroker], addrs[bench.AddrHTTP]
	streamtest.WaitFor(t, 60*time.Second, "three model versions", func() bool { return len(getModel(api).Recent) >= 3 })
	target := getModel(api).Recent[1]

	other := filepath.Join(dir, "other.yaml")
	os.WriteFile(other, []byte("snapshot:\n  hmac_key_env: UNIREC_E2E_OTHER_KEY\n"), 0o644)
	forged := exec.Command(unirecBin, "snapshot", "rollback", "--to", fmt.Sprint(target), "--config", other, "--brokers", broker)
	forged.Env = append(os.Environ(), "UNIREC_E2E_OTHER_KEY=not-the-snapshot-key-at-all")
	if out, err := forged.CombinedOutput(); err != nil {
		t.Fatalf("forged rollback command: %v\n%s", err, out)
	}
	streamtest.WaitFor(t, 20*time.Second, "the forged control record to be rejected", func() bool {
		return strings.Contains(log.String(), "control record: unauthenticated")
	})
	if getModel(api).Held {
		t.Fatal("a control record signed with another key rolled the replica back")
	}

	if out, err := exec.Command(unirecBin, "snapshot", "rollback", "--to", fmt.Sprint(target), "--config", cfg, "--brokers", broker).CombinedOutput(); err != nil {
		t.Fatalf("rollback command: %v\n%s", err, out)
	}
	streamtest.WaitFor(t, 20*time.Second, fmt.Sprintf("the replica to serve version %d", target), func() bool {
		m := getModel(api)
		return m.Held && m.Version == target
	})
	checkSnapshotList(t, cfg, broker, target)
	time.Sleep(time.Second) // new versions arrive behind the rollback
	if m := getModel(api); m.Version != target || m.Head <= target {
		t.Fatalf("during the rollback: %+v", m)
	}

	if code := postResume(t, api, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("resume with a wrong token: %d", code)
	}
	if code := postResume(t, api, "e2e-admin-token-0123456789"); code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	if m := getModel(api); m.Held || m.Version <= target || !slices.Contains(m.Recent, m.Version) {
		t.Fatalf("after resume: %+v", m)
	}
}

// checkSnapshotList runs `unirec snapshot list --json`: the trainer's
// chain is usable and signed, the forged rollback is flagged, the real one
// is usable.
func checkSnapshotList(t *testing.T, cfg, broker string, target int64) {
	t.Helper()
	out, err := exec.Command(unirecBin, "snapshot", "list", "--json", "--config", cfg, "--brokers", broker).Output()
	if err != nil {
		t.Fatalf("snapshot list: %v\n%s", err, out)
	}
	var entries []snapshot.Entry
	if err := json.Unmarshal(out, &entries); err != nil {
		t.Fatalf("snapshot list --json: %v\n%s", err, out)
	}
	var fulls, usable int
	var controls []string
	for _, e := range entries {
		switch {
		case e.Kind == snapshot.EntryControl:
			controls = append(controls, fmt.Sprintf("%s %d %s %v", e.Action, e.Version, e.Signature, e.Usable))
		case e.Usable && e.Signature == snapshot.SignatureValid:
			usable++
			if e.Kind == snapshot.KindFull {
				fulls++
			}
		default:
			t.Errorf("the trainer's snapshot at offset %d is flagged: %+v", e.Offset, e)
		}
	}
	want := []string{fmt.Sprintf("rollback %d forged false", target), fmt.Sprintf("rollback %d valid true", target)}
	if fulls == 0 || usable < 3 || !slices.Equal(controls, want) {
		t.Errorf("snapshot list: %d fulls, %d usable, controls %q (want %q)", fulls, usable, controls, want)
	}
	text, err := exec.Command(unirecBin, "snapshot", "list", "--config", cfg, "--brokers", broker).Output()
	if err != nil || !strings.Contains(string(text), "UNUSABLE: signature forged") {
		t.Errorf("snapshot list: %v\n%s", err, text)
	}
}

// lockedBuffer is a log buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
