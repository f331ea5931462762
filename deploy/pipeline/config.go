// Package pipeline is the wiring of every unirec stage from one validated
// config: the config itself (parsed once, validated purely, its secrets
// loaded once after), the embedded broker, ingest, the trainer and its
// snapshot publisher, serving replicas, the demo generator and each
// process's HTTP endpoints. `unirec` and the benchmarks start stages only
// through it. It never parses flags, and it reads files and the
// environment only in LoadConfig, LoadSecrets and StartBroker.
package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// Config is the one configuration format of every unirec command. It is
// parsed once (ReadConfig), checked (Validate), and its secrets are loaded
// once after (LoadSecrets); libraries receive option structs.
type Config struct {
	DataDir string               `yaml:"data_dir"`
	Kafka   stream.ClientOptions `yaml:"kafka"`
	Topics  stream.Topics        `yaml:"topics"`
	// AutoCreateTopics lets every command create missing topics at start-up;
	// when false, `unirec topics create` must have been run. Either way the
	// topics are checked at start-up.
	AutoCreateTopics bool              `yaml:"auto_create_topics"`
	Broker           BrokerConfig      `yaml:"broker"`
	Canvases         []ingest.Canvas   `yaml:"canvases"`
	Ingest           IngestConfig      `yaml:"ingest"`
	Model            model.ModelConfig `yaml:"model"`
	Trainer          TrainerConfig     `yaml:"trainer"`
	Snapshot         SnapshotConfig    `yaml:"snapshot"`
	Serve            ServeConfig       `yaml:"serve"`
	Demo             DemoConfig        `yaml:"demo"`
	// Role is what this process runs, set by its command before Validate
	// (never in YAML); it decides where the snapshot key must come from.
	Role Role `yaml:"-"`
	// Secrets are loaded by LoadSecrets, never from the YAML itself.
	Secrets Secrets `yaml:"-"`
}

// Role is what a process of a config runs: it decides whether the
// snapshot key must be configured (Validate) or may be generated
// (LoadSecrets).
type Role int

const (
	// RoleTool signs and verifies no snapshot (broker, ingest, topics,
	// dlq, status, benchmarks): a configured key is loaded, none is needed.
	RoleTool Role = iota
	// RoleStage signs or verifies snapshots in a process of its own
	// (train, serve): every process must name the same key, unless
	// snapshot.insecure is true.
	RoleStage
	// RoleOperator signs or checks snapshot records from the command line
	// (snapshot list, rollback, resume): the configured key, else the one
	// `unirec run` generated in data_dir, else it refuses (unless
	// snapshot.insecure is true).
	RoleOperator
	// RoleAll runs every stage in one process (`unirec run`): the snapshot
	// key and the admin token the config leaves unset are generated in
	// data_dir/secrets on the first start and reused after.
	RoleAll
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	Port            int `yaml:"port"`
	EventPartitions int `yaml:"event_partitions"`
	// TLS makes the embedded broker accept only TLS (PEM files).
	TLS struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// Users enables SASL on the embedded broker.
	Users []BrokerUserConfig `yaml:"users"`
}

// BrokerUserConfig is a SASL user of the embedded broker; its password
// comes from a file or an environment variable.
type BrokerUserConfig struct {
	Mechanism    string `yaml:"mechanism"`
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// IngestConfig configures the ingest stage.
type IngestConfig struct {
	Group           string        `yaml:"group"`
	TransactionalID string        `yaml:"transactional_id"`
	Changelog       string        `yaml:"changelog"`
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// MaxFutureSkew: events dated later than the wall clock plus this are
	// dead-lettered as "future"; no watermark passes it.
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
	MaxEventBytes int           `yaml:"max_event_bytes"`
	// MaxDedupeIDs and MaxPoolItems bound the memory of each partition:
	// event ids remembered, items per negative-sampling pool.
	MaxDedupeIDs int    `yaml:"max_dedupe_ids"`
	MaxPoolItems int    `yaml:"max_pool_items"`
	Listen       string `yaml:"listen"`
	// SessionTimeout is the consumer-group session (and rebalance)
	// timeout: how long a crashed ingest process keeps its partitions. 0
	// keeps the client's defaults (45s session, 60s rebalance).
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// TrainerConfig configures the trainer.
type TrainerConfig struct {
	CommitInterval time.Duration `yaml:"commit_interval"`
	MaxRows        int           `yaml:"max_rows"`
	MinCount       int           `yaml:"min_count"`
	TTL            time.Duration `yaml:"ttl"`
	// Workers learn a mini-batch together (model.step > 1); 0: one per CPU.
	Workers int `yaml:"workers"`
	// PrepareWorkers decode and featurize the examples; 0: a quarter of
	// the CPUs, at least one.
	PrepareWorkers int `yaml:"prepare_workers"`
	// LeaseGroup and LeaseTopic: trainers of one model join this consumer
	// group on this one-partition topic; the member holding partition 0
	// publishes snapshots, the others train as hot standbys.
	LeaseGroup          string        `yaml:"lease_group"`
	LeaseTopic          string        `yaml:"lease_topic"`
	LeaseSessionTimeout time.Duration `yaml:"lease_session_timeout"`
	Listen              string        `yaml:"listen"`
	// ResetOffsets: what to do when the stored offsets are no longer on
	// the examples topic: "" fails at start with the fix, "earliest" or
	// "latest" continue there (flag --reset-offsets, for one start).
	ResetOffsets string `yaml:"reset_offsets"`
}

// SnapshotConfig configures snapshot publication and verification.
type SnapshotConfig struct {
	// Interval between snapshots (deltas); FullInterval between full ones.
	Interval        time.Duration     `yaml:"interval"`
	FullInterval    time.Duration     `yaml:"full_interval"`
	Encoding        snapshot.Encoding `yaml:"encoding"`
	TransactionalID string            `yaml:"transactional_id"`
	ModelID         string            `yaml:"model_id"`
	// The HMAC key that signs (trainer) and verifies (replicas) snapshots
	// comes from a file or an environment variable, never a flag.
	HMACKeyFile string `yaml:"hmac_key_file"`
	HMACKeyEnv  string `yaml:"hmac_key_env"`
	// Insecure lets separate processes sign and verify nothing when no
	// key is configured (and `unirec run` generate none): it must be
	// written, never a default.
	Insecure bool `yaml:"insecure"`
	// ControlMaxAge: replicas refuse control records (rollback, resume)
	// created longer ago, so an old signed command cannot be replayed.
	ControlMaxAge time.Duration `yaml:"control_max_age"`
	// MaxBytes bounds the chunk bytes a replica buffers for one snapshot
	// before its manifest is checked; set it above the largest full
	// snapshot (unirec_snapshot_bytes{kind="full"}).
	MaxBytes int `yaml:"max_bytes"`
}

// ServeConfig configures a serving replica.
type ServeConfig struct {
	Listen   string          `yaml:"listen"`
	UseCases []serve.UseCase `yaml:"use_cases"`
	// KeepVersions is how many recent versions a replica keeps for rollback.
	KeepVersions int          `yaml:"keep_versions"`
	Checks       serve.Checks `yaml:"checks"`
	// The admin token (rollback, resume) comes from a file or an
	// environment variable; none disables the admin endpoints.
	AdminTokenFile string `yaml:"admin_token_file"`
	AdminTokenEnv  string `yaml:"admin_token_env"`
	// The API token, from a file or an environment variable, is required
	// by recommend, batch, use-cases and model when set; none leaves the
	// API open.
	APITokenFile string `yaml:"api_token_file"`
	APITokenEnv  string `yaml:"api_token_env"`
	// CandidateSets are named lists of item ids to rank (candidates.set).
	CandidateSets map[string][]string `yaml:"candidate_sets"`
	// Load bounds a replica's concurrent work and recent history.
	Load serve.LoadOptions `yaml:"load"`
	// Scoring ranks the whole catalog exactly ("exact", the default) or
	// by an int8 pass whose best candidates are re-ranked exactly
	// ("int8").
	Scoring string `yaml:"scoring"`
	// RowsDir, when set, holds each version's base rows in files read with
	// pread instead of the heap (more users than memory); "" keeps them in
	// memory.
	RowsDir string `yaml:"rows_dir"`
	// Only restricts a replica to some use cases (flag --use-cases).
	Only []string `yaml:"-"`
}

// ReplicaOptions returns the replica options the config describes.
func (s ServeConfig) ReplicaOptions(reg *ingest.Registry) serve.ReplicaOptions {
	return serve.ReplicaOptions{Registry: reg, UseCases: s.UseCases, Checks: s.Checks, KeepVersions: s.KeepVersions,
		Only: s.Only, CandidateSets: s.CandidateSets, Load: s.Load, Scoring: s.Scoring, RowsDir: s.RowsDir}
}

// SnapshotRetention is the retention of the snapshots topic: ten full
// intervals, at least an hour, so the newest full snapshot and every delta
// after it are always there for a cold replica.
func (c Config) SnapshotRetention() time.Duration {
	return max(10*c.Snapshot.FullInterval, time.Hour)
}

// DemoConfig configures the demo event generator of `unirec run`.
type DemoConfig struct {
	Enabled bool    `yaml:"enabled"`
	Rate    float64 `yaml:"rate"` // requests per second
	Seed    int64   `yaml:"seed"`
}

// DefaultConfig returns the configuration `make run` uses.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		DataDir:          "data",
		Kafka:            stream.ClientOptions{Brokers: []string{"localhost:9092"}},
		Topics:           stream.DefaultTopics(),
		AutoCreateTopics: true,
		Broker:           BrokerConfig{Port: 9092, EventPartitions: 4},
		Ingest: IngestConfig{Group: "unirec-ingest", TransactionalID: "unirec-ingest-" + host + "-" + fmt.Sprint(os.Getpid()),
			Changelog: "unirec.ingest.changelog", AllowedLateness: 5 * time.Second, MaxFutureSkew: ingest.DefaultMaxFutureSkew,
			MaxEventBytes: 64 << 10, MaxDedupeIDs: ingest.DefaultMaxDedupeIDs, MaxPoolItems: ingest.DefaultMaxPoolItems, Listen: "localhost:8081"},
		Model: model.DefaultModelConfig(),
		Trainer: TrainerConfig{CommitInterval: time.Second, MinCount: 1, LeaseGroup: "unirec-trainer", LeaseTopic: "unirec.trainer.lease",
			LeaseSessionTimeout: 10 * time.Second, Listen: "localhost:8082"},
		Snapshot: SnapshotConfig{Interval: 200 * time.Millisecond, FullInterval: 5 * time.Minute, Encoding: snapshot.EncodingFloat32,
			TransactionalID: "unirec-snapshot-publisher", ModelID: "unirec", ControlMaxAge: snapshot.DefaultControlMaxAge,
			MaxBytes: snapshot.DefaultMaxBytes},
		Serve: ServeConfig{Listen: "localhost:8080", KeepVersions: 8, Checks: serve.DefaultChecks(), Scoring: serve.DefaultScoring},
		Demo:  DemoConfig{Enabled: true, Rate: 50, Seed: 1},
	}
}

// ReadConfig reads a YAML config file over the defaults ("" reads none)
// and fills what it leaves empty (EnsureDefaults); it does not validate.
// Unknown fields are errors, so a typo cannot silently fall back to a
// default.
func ReadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("cannot read config %q: %w", path, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("cannot parse config %q: %w", path, err)
		}
	}
	cfg.EnsureDefaults()
	return cfg, nil
}

// LoadConfig reads a YAML config file over the defaults and validates it;
// the error names the file and the field to fix.
func LoadConfig(path string) (Config, error) {
	cfg, err := ReadConfig(path)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		if path == "" {
			return cfg, err
		}
		return cfg, fmt.Errorf("invalid config %q: %w", path, err)
	}
	return cfg, nil
}

// EnsureDefaults fills the topic names and the canvases a config leaves
// empty.
func (c *Config) EnsureDefaults() {
	c.Topics.EnsureDefaults()
	if len(c.Canvases) == 0 {
		c.Canvases = ingest.DefaultCanvases()
	}
}

// Validate checks every section; the error names the field to fix. It is
// pure: it reads no file or environment variable, opens no connection and
// changes nothing (secrets are LoadSecrets'). To check the use cases
// against the canvases it builds a replica aside and drops it.
func (c Config) Validate() error {
	if c.Topics.ReplicationFactor < 1 {
		return fmt.Errorf("topics.replication_factor must be at least 1, got %d", c.Topics.ReplicationFactor)
	}
	if c.DataDir == "" {
		return errors.New("data_dir is required")
	}
	if err := c.Kafka.Validate(); err != nil {
		return err
	}
	if c.Broker.EventPartitions <= 0 {
		return errors.New("broker.event_partitions must be positive")
	}
	if err := c.Ingest.validate(); err != nil {
		return err
	}
	if err := c.Model.Validate(); err != nil {
		return err
	}
	if err := c.TrainerOptions().Validate(); err != nil {
		return err
	}
	if c.Trainer.LeaseGroup == "" || c.Trainer.LeaseTopic == "" || c.Trainer.LeaseSessionTimeout <= 0 {
		return errors.New("trainer.lease_group, trainer.lease_topic and a positive trainer.lease_session_timeout are required")
	}
	if err := c.Snapshot.validate(); err != nil {
		return err
	}
	if c.Role == RoleStage && !c.Snapshot.keyConfigured() && !c.Snapshot.Insecure {
		return errors.New(errNoKey)
	}
	if c.Serve.KeepVersions < 1 {
		return errors.New("serve.keep_versions must be at least 1")
	}
	if c.Demo.Rate <= 0 {
		return errors.New("demo.rate must be positive")
	}
	reg, err := c.Registry()
	if err != nil {
		return err
	}
	_, err = serve.NewReplica(c.Serve.ReplicaOptions(reg))
	return err
}

func (i IngestConfig) validate() error {
	if i.AllowedLateness < 0 {
		return errors.New("ingest.allowed_lateness must not be negative")
	}
	if i.MaxFutureSkew < time.Second {
		return fmt.Errorf("ingest.max_future_skew must be at least 1s (events later than the wall clock plus it are dead-lettered), got %s", i.MaxFutureSkew)
	}
	if i.MaxDedupeIDs < 1 || i.MaxPoolItems < 1 {
		return fmt.Errorf("ingest.max_dedupe_ids and ingest.max_pool_items must be positive, got %d and %d", i.MaxDedupeIDs, i.MaxPoolItems)
	}
	if i.SessionTimeout != 0 && i.SessionTimeout < time.Second {
		return fmt.Errorf("ingest.session_timeout must be 0 (client default) or at least 1s, got %s", i.SessionTimeout)
	}
	if i.Group == "" || i.TransactionalID == "" || i.Changelog == "" {
		return errors.New("ingest.group, ingest.transactional_id and ingest.changelog are required")
	}
	return nil
}

func (s SnapshotConfig) validate() error {
	if s.Interval <= 0 {
		return errors.New("snapshot.interval must be positive")
	}
	if s.FullInterval < s.Interval {
		return fmt.Errorf("snapshot.full_interval (%s) must be at least snapshot.interval (%s)", s.FullInterval, s.Interval)
	}
	if err := s.Encoding.Validate(); err != nil {
		return err
	}
	if s.TransactionalID == "" || s.ModelID == "" {
		return errors.New("snapshot.transactional_id and snapshot.model_id are required")
	}
	if s.MaxBytes < 1<<20 {
		return fmt.Errorf("snapshot.max_bytes must be at least 1 MiB (1048576), and above the largest full snapshot; got %d", s.MaxBytes)
	}
	if s.Insecure && s.keyConfigured() {
		return errors.New("snapshot.insecure is true but a key is configured (snapshot.hmac_key_file or snapshot.hmac_key_env): remove one")
	}
	if s.ControlMaxAge < time.Second {
		return fmt.Errorf("snapshot.control_max_age must be at least 1s (older control records are refused as replays), got %s", s.ControlMaxAge)
	}
	return nil
}

// errNoKey is the error of a process that must sign or verify snapshots
// without a key: it names the fields and the fix.
const errNoKey = "snapshot.hmac_key_file or snapshot.hmac_key_env is required: separate processes sign (train) and verify " +
	"(serve, snapshot list|rollback|resume) snapshots with one shared key; create one with " +
	"`openssl rand -hex 32 > snapshot.key; chmod 600 snapshot.key`, name it in every process's config, " +
	"or write snapshot.insecure: true to run without authentication"

// keyConfigured says whether the config names a snapshot key.
func (s SnapshotConfig) keyConfigured() bool { return s.HMACKeyFile != "" || s.HMACKeyEnv != "" }

// Registry builds the canvas registry.
func (c Config) Registry() (*ingest.Registry, error) { return ingest.NewRegistry(c.Canvases) }

// TrainerOptions are the options of the trainer of this configuration.
func (c Config) TrainerOptions() online.TrainerOptions {
	return online.TrainerOptions{
		Model: c.Model, Dir: filepath.Join(c.DataDir, "trainer"), Client: c.Kafka, Topic: c.Topics.Examples,
		CommitInterval: c.Trainer.CommitInterval, MaxRows: c.Trainer.MaxRows, MinCount: c.Trainer.MinCount, TTL: c.Trainer.TTL,
		ResetOffsets: c.Trainer.ResetOffsets, Workers: c.Trainer.Workers, PrepareWorkers: c.Trainer.PrepareWorkers,
	}
}
