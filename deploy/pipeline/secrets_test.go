package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runConfig is the default config of `unirec run` with its data in a
// temporary directory, validated.
func runConfig(t *testing.T, dir string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.EnsureDefaults()
	cfg.DataDir, cfg.Role = dir, RoleAll
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// `unirec run` with no key or token configured generates both in
// data_dir/secrets on its first start, readable by its owner only, uses
// them, and reuses them on every later start.
func TestRunGeneratesItsSecretsOnce(t *testing.T) {
	dir := t.TempDir()
	first := runConfig(t, dir)
	if err := first.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	key, token := filepath.Join(dir, "secrets", "snapshot.key"), filepath.Join(dir, "secrets", "admin.token")
	if first.Snapshot.HMACKeyFile != key || first.Serve.AdminTokenFile != token {
		t.Fatalf("files recorded: %q, %q; want %q, %q", first.Snapshot.HMACKeyFile, first.Serve.AdminTokenFile, key, token)
	}
	for _, f := range []struct {
		path   string
		secret []byte
	}{{key, first.Secrets.SnapshotKey}, {token, first.Secrets.AdminToken}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(f.path)
		if st.Mode().Perm() != 0o600 || strings.TrimSpace(string(b)) != string(f.secret) || len(f.secret) != 64 {
			t.Errorf("%s: mode %v, content %q, loaded %q; want 0600 and 64 hex digits, loaded", f.path, st.Mode().Perm(), b, f.secret)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "secrets")); st.Mode().Perm() != 0o700 {
		t.Errorf("secrets dir mode %v, want 0700", st.Mode().Perm())
	}
	if string(first.Secrets.SnapshotKey) == string(first.Secrets.AdminToken) {
		t.Error("the key and the token are the same")
	}
	if first.Secrets.APIToken != nil {
		t.Error("an API token was generated: the recommend API of `unirec run` stays open on localhost")
	}
	second := runConfig(t, dir)
	if err := second.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if string(second.Secrets.SnapshotKey) != string(first.Secrets.SnapshotKey) || string(second.Secrets.AdminToken) != string(first.Secrets.AdminToken) {
		t.Error("a second start did not reuse the generated key and token")
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "secrets"))
	if len(entries) != 2 {
		t.Errorf("secrets dir holds %d files, want 2 (no temporary left)", len(entries))
	}
}

// A key or token the config names wins over generation; snapshot.insecure
// generates no key.
func TestConfiguredSecretsWin(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "my.key")
	os.WriteFile(keyFile, []byte("configured-snapshot-key-0123\n"), 0o600)
	t.Setenv("UNIREC_TEST_ADMIN_TOKEN", "configured-admin-token-0123")
	cfg := runConfig(t, dir)
	cfg.Snapshot.HMACKeyFile, cfg.Serve.AdminTokenEnv = keyFile, "UNIREC_TEST_ADMIN_TOKEN"
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if string(cfg.Secrets.SnapshotKey) != "configured-snapshot-key-0123" || string(cfg.Secrets.AdminToken) != "configured-admin-token-0123" {
		t.Errorf("loaded %q, %q; want the configured ones", cfg.Secrets.SnapshotKey, cfg.Secrets.AdminToken)
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); !os.IsNotExist(err) {
		t.Errorf("secrets generated although configured: %v", err)
	}

	insecure := runConfig(t, t.TempDir())
	insecure.Snapshot.Insecure = true
	if err := insecure.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if insecure.Secrets.SnapshotKey != nil || insecure.Secrets.AdminToken == nil {
		t.Errorf("snapshot.insecure: key %q, admin token %q; want no key, a generated token", insecure.Secrets.SnapshotKey, insecure.Secrets.AdminToken)
	}
}

// Validate is pure and refuses separate processes that would sign or
// verify snapshots without a key, naming the fields and the fix, unless
// snapshot.insecure is written.
func TestValidateRequiresAKeyForSeparateProcesses(t *testing.T) {
	f := func(role Role, edit func(*Config), want string) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.EnsureDefaults()
		cfg.Role = role
		edit(&cfg)
		err := cfg.Validate()
		if (err == nil) != (want == "") || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("role %d: got %v, want %q", role, err, want)
		}
	}
	none := func(*Config) {}
	f(RoleStage, none, "snapshot.hmac_key_file or snapshot.hmac_key_env is required")
	f(RoleStage, none, "or write snapshot.insecure: true")
	f(RoleStage, func(c *Config) { c.Snapshot.Insecure = true }, "")
	// Pure: a key file that does not exist is LoadSecrets' error, not Validate's.
	f(RoleStage, func(c *Config) { c.Snapshot.HMACKeyFile = "/nonexistent/key" }, "")
	f(RoleStage, func(c *Config) { c.Snapshot.HMACKeyEnv = "UNIREC_TEST_UNSET_KEY_VAR" }, "")
	f(RoleStage, func(c *Config) { c.Snapshot.HMACKeyFile, c.Snapshot.Insecure = "/k", true }, "snapshot.insecure is true but a key is configured")
	f(RoleAll, none, "")
	f(RoleTool, none, "")
	f(RoleOperator, none, "") // the key `unirec run` generated may be there: LoadSecrets looks
}

// The snapshot commands use the key `unirec run` generated in data_dir,
// and refuse, naming the fix, when there is none.
func TestOperatorUsesTheGeneratedKey(t *testing.T) {
	dir := t.TempDir()
	op := DefaultConfig()
	op.EnsureDefaults()
	op.DataDir, op.Role = dir, RoleOperator
	if err := op.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "snapshot.hmac_key_file or snapshot.hmac_key_env is required") {
		t.Fatalf("no key anywhere: %v", err)
	}
	run := runConfig(t, dir)
	if err := run.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if err := op.LoadSecrets(); err != nil || string(op.Secrets.SnapshotKey) != string(run.Secrets.SnapshotKey) {
		t.Fatalf("got %q, %v; want the generated key", op.Secrets.SnapshotKey, err)
	}
	if op.Secrets.AdminToken != nil {
		t.Error("an operator command loaded the admin token it does not use")
	}
}

// Key and token file paths may name environment variables, as systemd's
// LoadCredential= needs ($CREDENTIALS_DIRECTORY); one that is not set is
// an error naming the field.
func TestSecretPathsExpandCredentialsDirectory(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "snapshot-key"), []byte("credential-snapshot-key-0123\n"), 0o600)
	cfg := DefaultConfig()
	cfg.EnsureDefaults()
	cfg.Role, cfg.Snapshot.HMACKeyFile = RoleStage, "${CREDENTIALS_DIRECTORY}/snapshot-key"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CREDENTIALS_DIRECTORY", dir)
	if err := cfg.LoadSecrets(); err != nil || string(cfg.Secrets.SnapshotKey) != "credential-snapshot-key-0123" {
		t.Fatalf("got %q, %v", cfg.Secrets.SnapshotKey, err)
	}
	cfg.Serve.AdminTokenFile = "$UNIREC_TEST_UNSET_DIR/admin-token"
	if err := cfg.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "serve.admin_token_file") || !strings.Contains(err.Error(), "UNIREC_TEST_UNSET_DIR") {
		t.Fatalf("unset variable: %v", err)
	}
}

// A stage that would sign or verify snapshots refuses to start without a
// key unless snapshot.insecure is written, whatever its command set.
func TestStagesRefuseToRunWithoutAKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnsureDefaults()
	cfg.DataDir = t.TempDir()
	p := NewProcess(context.Background(), cfg, t.Logf)
	defer p.Stop()
	if err := StartTrainer(p); err == nil || !strings.Contains(err.Error(), "snapshot.hmac_key_file or snapshot.hmac_key_env is required") {
		t.Errorf("trainer: %v", err)
	}
	if _, err := StartReplica(p); err == nil || !strings.Contains(err.Error(), "snapshot.hmac_key_file or snapshot.hmac_key_env is required") {
		t.Errorf("replica: %v", err)
	}
}

// A process holds only the secrets it uses: a tool (ingest, topics,
// status) loads neither the snapshot key nor the admin token (nor expands
// their paths), so a deployment mounts them only where train and serve
// run, from one shared config.
func TestToolsLoadNeitherKeyNorAdminToken(t *testing.T) {
	cfg := DefaultConfig()
	cfg.EnsureDefaults()
	cfg.Snapshot.HMACKeyFile, cfg.Serve.AdminTokenFile = "${UNIREC_TEST_UNSET_DIR}/snapshot-key", "/nonexistent/admin-token"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.LoadSecrets(); err != nil || cfg.Secrets.SnapshotKey != nil || cfg.Secrets.AdminToken != nil {
		t.Fatalf("tool: %v, key %q, token %q", err, cfg.Secrets.SnapshotKey, cfg.Secrets.AdminToken)
	}
	cfg.Role = RoleStage
	if err := cfg.LoadSecrets(); err == nil || !strings.Contains(err.Error(), "snapshot.hmac_key_file") || !strings.Contains(err.Error(), "UNIREC_TEST_UNSET_DIR") {
		t.Fatalf("stage: %v", err)
	}
}
