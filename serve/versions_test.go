package serve

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/snapshot"
)

// fixture is a chain of captures of a trainer learning a synthetic world,
// and a replica on an injected clock.
type fixture struct {
	t    *testing.T
	reg  *ingest.Registry
	w    *synth.World
	caps []*model.Capture
	now  time.Time
}

func newFixture(t *testing.T, steps int) *fixture {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultModelConfig()
	cfg.Dim = 8
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	w := synth.NewWorld(synth.Options{Seed: 4})
	exs := w.Examples(reg, 300*steps)
	f := &fixture{t: t, reg: reg, w: w}
	n := len(exs) / steps
	for s := 0; s < steps; s++ {
		for i := s * n; i < (s+1)*n; i++ {
			tr.Apply(&exs[i])
		}
		c, err := tr.Capture()
		if err != nil {
			t.Fatal(err)
		}
		f.caps = append(f.caps, c)
	}
	f.now = time.UnixMilli(f.caps[len(f.caps)-1].Watermark)
	return f
}

func (f *fixture) replica(opts ReplicaOptions) *Replica {
	f.t.Helper()
	opts.Registry = f.reg
	opts.Now = func() time.Time { return f.now }
	r, err := NewReplica(opts)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// update is the snapshot leading to version i (a delta unless i is 0 or full).
func (f *fixture) update(i int, full bool) *snapshot.Update {
	if i == 0 || full {
		return snapshot.UpdateOf(nil, f.caps[i])
	}
	return snapshot.UpdateOf(f.caps[i-1], f.caps[i])
}

func (f *fixture) apply(r *Replica, i int) {
	f.t.Helper()
	if err := r.Apply(f.update(i, false)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) ask(r *Replica, useCase string) (*Response, *APIError) {
	ctx, _ := f.w.Query(useCase, 1)
	return r.Recommend(context.Background(), &Request{UseCase: useCase, Context: ctx, K: 5})
}

func (f *fixture) version(r *Replica, useCase string) int64 {
	f.t.Helper()
	resp, aerr := f.ask(r, useCase)
	if aerr != nil {
		f.t.Fatal(aerr)
	}
	return resp.Model.Version
}

// A model built by applying deltas (copy on write, item vectors recomputed
// only for touched items) scores exactly like one built from the full
// snapshot, and the versions it was built from are left unchanged.
func TestDeltaModelEqualsFullModel(t *testing.T) {
	f := newFixture(t, 5)
	r := f.replica(ReplicaOptions{})
	f.apply(r, 0)
	first := r.Model()
	firstMatrix := append([]float32(nil), first.matrix("")...)
	for i := 1; i < len(f.caps); i++ {
		f.apply(r, i)
	}
	got, want := r.Model(), NewModel(f.update(len(f.caps)-1, true))
	if !reflect.DeepEqual(got.rows.all(), want.rows.all()) || got.rows.len() != want.rows.len() || !reflect.DeepEqual(got.tasks, want.tasks) || len(got.items) != len(want.items) {
		t.Fatalf("rows, tasks or items differ: %d/%d rows, %d/%d items", got.rows.len(), want.rows.len(), len(got.items), len(want.items))
	}
	d := got.Config.Dim + 1
	for i, it := range got.items {
		j := want.index[it.ID]
		if !reflect.DeepEqual(got.matrix("")[i*d:(i+1)*d], want.matrix("")[j*d:(j+1)*d]) {
			t.Fatalf("item %s: vector from deltas differs from the full model's", it.ID)
		}
	}
	if !reflect.DeepEqual(first.matrix(""), firstMatrix) {
		t.Fatal("applying deltas changed an older version's item matrix")
	}
}

// A delta that does not follow the head is refused with snapshot.ErrGap.
func TestDeltaOnTheWrongBaseIsAGap(t *testing.T) {
	f := newFixture(t, 3)
	r := f.replica(ReplicaOptions{})
	f.apply(r, 0)
	if err := r.Apply(f.update(2, false)); !errors.Is(err, snapshot.ErrGap) {
		t.Fatalf("got %v, want ErrGap", err)
	}
	if v := r.Model().Version; v != f.caps[0].Version {
		t.Fatalf("serving %d", v)
	}
}

// Each use case takes versions by its own policy on one replica: realtime
// takes every version, interval at most once per interval, pinned only its
// version (falling back until it arrives).
func TestUpdatePolicies(t *testing.T) {
	f := newFixture(t, 4)
	v := func(i int) int64 { return f.caps[i].Version }
	r := f.replica(ReplicaOptions{UseCases: []UseCase{
		{Name: "search"},
		{Name: "notifications", Updates: UpdatesInterval, UpdateInterval: time.Minute},
		{Name: "related_items", Updates: UpdatesPinned, PinVersion: v(1)},
	}})
	f.apply(r, 0)
	if resp, _ := f.ask(r, "related_items"); !resp.Fallback.Used || resp.Fallback.Reason != "pinned_version_unavailable" {
		t.Fatalf("pinned before its version: %+v", resp.Fallback)
	}
	if got := f.version(r, "notifications"); got != v(0) {
		t.Fatalf("interval: got %d", got)
	}
	f.now = f.now.Add(10 * time.Second)
	f.apply(r, 1)
	f.apply(r, 2)
	want := map[string]int64{"search": v(2), "notifications": v(0), "related_items": v(1)}
	for uc, w := range want {
		if got := f.version(r, uc); got != w {
			t.Errorf("after 10s: %s serves %d, want %d", uc, got, w)
		}
	}
	states := map[string]UseCaseState{}
	for _, s := range r.UseCaseStates() {
		states[s.Name] = s
	}
	for uc, policy := range map[string]string{"search": "realtime", "notifications": "interval 1m0s", "related_items": "pinned to version " + itoa(v(1))} {
		if s := states[uc]; s.Version != want[uc] || s.Policy != policy || s.Unavailable != "" || s.StalenessMS < 0 {
			t.Errorf("state of %s: %+v, want version %d, policy %q", uc, s, want[uc], policy)
		}
	}
	f.now = f.now.Add(51 * time.Second)
	f.apply(r, 3)
	want = map[string]int64{"search": v(3), "notifications": v(3), "related_items": v(1)}
	for uc, w := range want {
		if got := f.version(r, uc); got != w {
			t.Errorf("after 61s: %s serves %d, want %d", uc, got, w)
		}
	}
}

// An interval use case does not hold a version that learned nothing for a
// whole interval: the first trained version replaces it at once, and is
// then held.
func TestIntervalSkipsAnEmptyVersion(t *testing.T) {
	f := newFixture(t, 2)
	r := f.replica(ReplicaOptions{UseCases: []UseCase{{Name: "notifications", Updates: UpdatesInterval, UpdateInterval: time.Hour}}})
	u := r.useCases["notifications"]
	empty, trained, newer := &Model{Version: 1}, &Model{Version: 2, Applied: 10}, &Model{Version: 3, Applied: 20}
	for _, step := range []struct {
		live *Model
		want int64
	}{{empty, 1}, {trained, 2}, {newer, 2}} {
		r.good.Store(step.live)
		if m, _ := r.modelFor(u, f.now); m.Version != step.want {
			t.Errorf("live %d: serves %d, want %d", step.live.Version, m.Version, step.want)
		}
	}
}

// Beyond max_staleness each use case does what it says: flag, fall back
// to popularity or a static list, or refuse with 503; every answer names
// the version and its staleness.
func TestStalenessActions(t *testing.T) {
	f := newFixture(t, 1)
	r := f.replica(ReplicaOptions{UseCases: []UseCase{
		{Name: "search", MaxStaleness: time.Minute},
		{Name: "notifications", MaxStaleness: time.Minute, OnStale: OnStaleFallback},
		{Name: "related_items", MaxStaleness: time.Minute, OnStale: OnStaleFallback, Fallback: FallbackStatic, FallbackItems: []string{"m-7", "m-8"}},
		{Name: "category_exploration", MaxStaleness: time.Minute, OnStale: OnStaleRefuse},
	}})
	f.apply(r, 0)
	version := f.caps[0].Version
	for _, uc := range []string{"search", "notifications", "related_items", "category_exploration"} {
		resp, aerr := f.ask(r, uc)
		if aerr != nil || resp.Fallback.Used || resp.Model.Stale || resp.Model.Version != version || len(resp.Items) == 0 {
			t.Fatalf("%s fresh: %+v %v", uc, resp, aerr)
		}
	}
	f.now = f.now.Add(2 * time.Minute)
	resp, _ := f.ask(r, "search")
	if !resp.Model.Stale || resp.Fallback.Used || resp.Model.StalenessMS != 120_000 || len(resp.Items) == 0 {
		t.Errorf("flag: %+v", resp)
	}
	resp, _ = f.ask(r, "notifications")
	if !resp.Fallback.Used || resp.Fallback.Reason != "stale" || resp.Fallback.Source != FallbackPopularity ||
		len(resp.Items) == 0 || resp.Model.Version != version || !resp.Model.Stale {
		t.Errorf("popularity fallback: %+v", resp)
	}
	resp, _ = f.ask(r, "related_items")
	if !resp.Fallback.Used || resp.Fallback.Source != FallbackStatic || len(resp.Items) != 2 || resp.Items[0].ID != "m-7" {
		t.Errorf("static fallback: %+v", resp)
	}
	_, aerr := f.ask(r, "category_exploration")
	if aerr == nil || aerr.Status != http.StatusServiceUnavailable || aerr.Model == nil || aerr.Model.Version != version ||
		!strings.Contains(aerr.Message, "max_staleness") {
		t.Errorf("refuse: %+v", aerr)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp503, err := http.Post(srv.URL+"/v1/recommend", "application/json",
		strings.NewReader(`{"use_case":"category_exploration","context":{"user_id":"u-1","category":"Documentary"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp503.Body.Close()
	var body struct {
		Error string    `json:"error"`
		Model ModelInfo `json:"model"`
	}
	json.NewDecoder(resp503.Body).Decode(&body)
	if resp503.StatusCode != http.StatusServiceUnavailable || body.Model.Version != version || body.Model.StalenessMS != 120_000 || !body.Model.Stale {
		t.Errorf("refuse over HTTP: %d %+v", resp503.StatusCode, body)
	}
}

// Policies that cannot be honoured are refused at start-up, naming the
// field.
func TestPolicyConfigErrors(t *testing.T) {
	reg, _ := ingest.NewRegistry(ingest.DefaultCanvases())
	for _, tc := range []struct {
		u    UseCase
		want string
	}{
		{UseCase{Name: "search", Updates: UpdatesInterval}, "update_interval must be positive"},
		{UseCase{Name: "search", Updates: UpdatesPinned}, "pin_version must be"},
		{UseCase{Name: "search", Updates: "sometimes"}, "updates must be realtime, interval or pinned"},
		{UseCase{Name: "search", PinVersion: 3}, "pin_version is set but updates"},
		{UseCase{Name: "search", OnStale: OnStaleRefuse}, "needs max_staleness"},
		{UseCase{Name: "search", MaxStaleness: time.Second, OnStale: OnStaleFallback, Fallback: FallbackStatic}, "fallback_items must list"},
	} {
		_, err := NewReplica(ReplicaOptions{Registry: reg, UseCases: []UseCase{tc.u}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "serve.use_cases[search]") {
			t.Errorf("%+v: got %v, want %q", tc.u, err, tc.want)
		}
	}
}

// A version with a NaN row, an exploding norm or a collapsed progressive
// AUC never goes live: the replica stays on the last good version, a bad
// row keeps later deltas out until it is replaced, and a good full
// snapshot goes live again.
func TestBadUpdatesNeverGoLive(t *testing.T) {
	f := newFixture(t, 4)
	r := f.replica(ReplicaOptions{})
	f.apply(r, 0)
	good := f.caps[0].Version
	nan, next := f.update(1, false), f.update(2, false)
	untouched := -1
	for i, id := range nan.Delta.IDs {
		if !slices.Contains(next.Delta.IDs, id) {
			untouched = i
			break
		}
	}
	if untouched < 0 {
		t.Fatal("every row of delta 1 changes again in delta 2")
	}
	nan.Delta.Row(untouched)[0] = float32(math.NaN())
	if err := r.Apply(nan); !errors.Is(err, ErrBadUpdate) {
		t.Fatalf("NaN: got %v", err)
	}
	if err := r.Apply(next); !errors.Is(err, ErrBadUpdate) {
		t.Fatalf("delta on a version with a NaN row: got %v", err)
	}
	if v := f.version(r, "search"); v != good {
		t.Fatalf("serving %d, want the last good %d", v, good)
	}
	if err := r.Apply(f.update(3, true)); err != nil {
		t.Fatalf("good full after bad deltas: %v", err)
	}
	good = f.caps[3].Version

	f2 := newFixture(t, 2)
	r2 := f2.replica(ReplicaOptions{})
	huge := f2.update(0, true)
	huge.Delta.Weights[3] = 1e6
	if err := r2.Apply(huge); !errors.Is(err, ErrBadUpdate) || r2.Model() != nil {
		t.Fatalf("huge norm: got %v", err)
	}

	r3 := f.replica(ReplicaOptions{})
	first := f.update(0, true)
	first.Manifest.Progress = map[string]model.TaskProgress{"search": {AUC: 0.8, Window: 5000, Examples: 20_000}}
	if err := r3.Apply(first); err != nil {
		t.Fatal(err)
	}
	collapsed := f.update(1, false)
	collapsed.Manifest.Progress = map[string]model.TaskProgress{"search": {AUC: 0.55, Window: 5000, Examples: 20_500}}
	if err := r3.Apply(collapsed); !errors.Is(err, ErrBadUpdate) || !strings.Contains(err.Error(), "AUC fell") {
		t.Fatalf("AUC collapse: got %v", err)
	}
	if v := r3.Model().Version; v != f.caps[0].Version {
		t.Fatalf("serving %d after a collapse", v)
	}
	drift := f.update(2, false)
	drift.Manifest.Progress = map[string]model.TaskProgress{"search": {AUC: 0.6, Window: 5000, Examples: 30_000}}
	if err := r3.Apply(drift); err != nil {
		t.Fatalf("a version whose window no longer overlaps the last good one's: %v", err)
	}
	if v := f.version(r, "search"); v != good {
		t.Fatalf("serving %d, want %d", v, good)
	}
}

// An operator rolls a replica back over the admin endpoint (with the
// token); it holds that version while new ones arrive, until resume.
// Control records from the topic do the same.
func TestRollback(t *testing.T) {
	f := newFixture(t, 4)
	token := []byte("secret-admin-token")
	r := f.replica(ReplicaOptions{AdminToken: token, UseCases: []UseCase{
		{Name: "search"}, {Name: "notifications", Updates: UpdatesInterval, UpdateInterval: time.Hour}}})
	f.apply(r, 0)
	f.apply(r, 1)
	f.apply(r, 2)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	post := func(path, auth, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	v0, v1 := f.caps[0].Version, f.caps[1].Version
	if code := post("/admin/rollback", "", `{"version":1}`); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := post("/admin/rollback", "wrong", `{"version":1}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", code)
	}
	if code := post("/admin/rollback", string(token), `{"version":999}`); code != http.StatusConflict {
		t.Fatalf("unknown version: %d", code)
	}
	if code := post("/admin/rollback", string(token), `{"version":`+itoa(v1)+`}`); code != http.StatusOK {
		t.Fatalf("rollback: %d", code)
	}
	f.apply(r, 3)
	for _, uc := range []string{"search", "notifications"} {
		if v := f.version(r, uc); v != v1 {
			t.Fatalf("%s serves %d during the rollback, want %d", uc, v, v1)
		}
	}
	if code := post("/admin/resume", string(token), ""); code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	if v := f.version(r, "search"); v != f.caps[3].Version {
		t.Fatalf("after resume: %d", v)
	}
	r.Control(snapshot.Control{Action: snapshot.ActionRollback, Version: v0})
	if v := f.version(r, "search"); v != v0 {
		t.Fatalf("after a control rollback: %d, want %d", v, v0)
	}
	r.Control(snapshot.Control{Action: snapshot.ActionResume})
	if v := f.version(r, "search"); v != f.caps[3].Version {
		t.Fatalf("after a control resume: %d", v)
	}
	disabled := f.replica(ReplicaOptions{})
	srv2 := httptest.NewServer(disabled.Handler())
	defer srv2.Close()
	resp, err := http.Post(srv2.URL+"/admin/rollback", "application/json", strings.NewReader(`{"version":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("without a configured token: %d", resp.StatusCode)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
