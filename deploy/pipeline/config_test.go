package pipeline

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every unirec config file under deploy/ (every file named unirec.yaml)
// parses with the real loader, so none can rot.
func TestDeployConfigsParse(t *testing.T) {
	var files []string
	filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "unirec.yaml" {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 4 {
		t.Fatalf("found only %v under deploy/", files)
	}
	for _, f := range files {
		c, err := LoadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if f != filepath.Join("..", "unirec.yaml") {
			checkSecureDeployment(t, f, c)
		}
		// The deployments (not the defaults file) let a killed ingest
		// process's partitions move within seconds, as the topology does.
		if f != filepath.Join("..", "unirec.yaml") && (c.Ingest.SessionTimeout == 0 || c.Ingest.SessionTimeout > 15*time.Second) {
			t.Errorf("%s: ingest.session_timeout is %s; set 10s (the client default holds a dead process's partitions 45s)", f, c.Ingest.SessionTimeout)
		}
	}
}

// checkSecureDeployment: a shipped deployment authenticates snapshots and
// the admin API (insecure only when written, and none is), its train and
// serve processes start, and outside a container network (compose,
// kubernetes: said in a comment there) nothing listens on every interface.
func checkSecureDeployment(t *testing.T, f string, c Config) {
	t.Helper()
	if !c.Snapshot.keyConfigured() || c.Snapshot.Insecure || (c.Serve.AdminTokenFile == "" && c.Serve.AdminTokenEnv == "") {
		t.Errorf("%s: names no snapshot key or admin token, or is insecure", f)
	}
	c.Role = RoleStage
	if err := c.Validate(); err != nil {
		t.Errorf("%s: train and serve would refuse it: %v", f, err)
	}
	container := strings.Contains(f, "compose") || strings.Contains(f, "kubernetes")
	for _, l := range []string{c.Ingest.Listen, c.Trainer.Listen, c.Serve.Listen} {
		if !container && (strings.HasPrefix(l, ":") || strings.HasPrefix(l, "0.0.0.0")) {
			t.Errorf("%s: listens on every interface (%q) outside a container network", f, l)
		}
	}
}

// The documented full config says exactly what the defaults are.
func TestDeployConfigIsTheDefaults(t *testing.T) {
	got, err := LoadConfig("../unirec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.EnsureDefaults()
	if err := want.Validate(); err != nil {
		t.Fatal(err)
	}
	got.Ingest.TransactionalID = want.Ingest.TransactionalID
	got.Serve.UseCases = nil
	if !reflect.DeepEqual(got, want) {
		for _, f := range []string{"Kafka", "Broker", "Ingest", "Model", "Trainer", "Snapshot", "Serve", "Demo", "Canvases", "Topics"} {
			if g, w := reflect.ValueOf(got).FieldByName(f).Interface(), reflect.ValueOf(want).FieldByName(f).Interface(); !reflect.DeepEqual(g, w) {
				t.Logf("%s differs:\n got %+v\nwant %+v", f, g, w)
			}
		}
		t.Errorf("deploy/unirec.yaml drifted from DefaultConfig:\n got %+v\nwant %+v", got, want)
	}
}

// A bad config, or a secret it names that cannot be loaded, fails with
// an error that names the field.
func TestBadConfigNamesTheField(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(p, []byte(yaml), 0o644)
		cfg, err := ReadConfig(p)
		cfg.DataDir, cfg.Role = t.TempDir(), RoleAll // loads every secret
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			err = cfg.LoadSecrets()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", yaml, err, want)
		}
	}
	f("model:\n  dim: 0\n", "model.dim")
	f("model:\n  dimension: 8\n", "field dimension not found")
	f("snapshot:\n  interval: -1s\n", "snapshot.interval")
	f("kafka:\n  brokers: [nohost]\n", "kafka.brokers")
	f("serve:\n  use_cases: [{name: billboard}]\n", `"billboard" is not a configured canvas`)
	f("canvases: [{name: x, attribution_window: 0s}]\n", "canvases[x].attribution_window")
	f("snapshot:\n  encoding: bfloat16\n", "snapshot.encoding")
	f("snapshot:\n  full_interval: 100ms\n", "snapshot.full_interval")
	f("snapshot:\n  hmac_key_env: UNIREC_TEST_UNSET_KEY_VAR\n", "snapshot.hmac_key_env")
	f("snapshot:\n  hmac_key_file: /nonexistent/key\n", "snapshot.hmac_key_file")
	f("serve:\n  use_cases: [{name: search, updates: interval}]\n", "serve.use_cases[search].update_interval")
	f("serve:\n  use_cases: [{name: search, on_stale: refuse}]\n", "serve.use_cases[search].on_stale")
	f("serve:\n  checks: {max_norm: -1}\n", "serve.checks.max_norm")
	f("model:\n  memory:\n    max_contexts: 3\n", "model.memory.max_contexts must be at least 4 (a list per memory lane), got 3")
	f("topics:\n  replication_factor: 0\n", "topics.replication_factor must be at least 1")
	f("ingest:\n  max_future_skew: 0s\n", "ingest.max_future_skew must be at least 1s")
	f("ingest:\n  max_dedupe_ids: 0\n", "ingest.max_dedupe_ids and ingest.max_pool_items must be positive")
	f("canvases: [{name: x, attribution_window: 30s, actions: {click: {positive: true, weight: .nan}}}]\n", "canvases[x].actions[click].weight must be in (0, 1e+06], got NaN")
	f("canvases: [{name: x, attribution_window: 30s, actions: {click: {positive: true, weight: 1}}, negative_keep_rate: 1, weight: .inf}]\n", "canvases[x].weight must be in (0, 1e+06], got +Inf")
	f("serve:\n  api_token_env: UNIREC_TEST_UNSET_TOKEN_VAR\n", "serve.api_token_env")
	f("serve:\n  api_token_file: /nonexistent/token\n", "serve.api_token_file")
	// A secret that is too short names its field and says what it is.
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	f("serve:\n  api_token_file: "+short+"\n", "serve.api_token_file: token must be at least 16 bytes, got 3")
	f("serve:\n  admin_token_file: "+short+"\n", "serve.admin_token_file: token must be at least 16 bytes, got 3")
	f("snapshot:\n  hmac_key_file: "+short+"\n", "snapshot.hmac_key_file: key must be at least 16 bytes, got 3")
	t.Setenv("UNIREC_TEST_SHORT_TOKEN", "abcd")
	f("serve:\n  api_token_env: UNIREC_TEST_SHORT_TOKEN\n", "serve.api_token_env: token must be at least 16 bytes, got 4")
}

// Every topic unirec uses is created and checked with the configured
// replication factor, the trainers' lease topic included.
func TestTopicSpecsCoverEveryTopic(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Topics.ReplicationFactor = 3
	got := map[string]int16{}
	for _, s := range TopicSpecs(cfg) {
		got[s.Name] = s.Replicas
	}
	for _, name := range []string{cfg.Topics.Events, cfg.Topics.Repartition, cfg.Topics.Examples, cfg.Topics.Snapshots, cfg.Topics.DeadLetters,
		cfg.Topics.Catalog, cfg.Ingest.Changelog, cfg.Trainer.LeaseTopic} {
		if got[name] != 3 {
			t.Errorf("topic %q: replicas %d in the specs, want 3", name, got[name])
		}
	}
}
