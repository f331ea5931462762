package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// Config is the one configuration format of every unirec command. It is
// parsed once, here; libraries receive option structs.
type Config struct {
	DataDir  string               `yaml:"data_dir"`
	Kafka    stream.ClientOptions `yaml:"kafka"`
	Topics   stream.Topics        `yaml:"topics"`
	Broker   BrokerConfig         `yaml:"broker"`
	Canvases []ingest.Canvas      `yaml:"canvases"`
	Ingest   IngestConfig         `yaml:"ingest"`
	Model    online.ModelConfig   `yaml:"model"`
	Trainer  TrainerConfig        `yaml:"trainer"`
	Snapshot SnapshotConfig       `yaml:"snapshot"`
	Serve    ServeConfig          `yaml:"serve"`
	Demo     DemoConfig           `yaml:"demo"`
}

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	Port            int `yaml:"port"`
	EventPartitions int `yaml:"event_partitions"`
}

// IngestConfig configures the ingest stage.
type IngestConfig struct {
	Group           string        `yaml:"group"`
	TransactionalID string        `yaml:"transactional_id"`
	Changelog       string        `yaml:"changelog"`
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	MaxEventBytes   int           `yaml:"max_event_bytes"`
	Listen          string        `yaml:"listen"`
}

// TrainerConfig configures the trainer.
type TrainerConfig struct {
	CommitInterval time.Duration `yaml:"commit_interval"`
	Listen         string        `yaml:"listen"`
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
}

// Key loads the snapshot HMAC key (nil when none is configured).
func (s SnapshotConfig) Key() ([]byte, error) {
	return snapshot.LoadKey(s.HMACKeyFile, s.HMACKeyEnv, "snapshot.hmac_key")
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
	// CandidateSets are named lists of item ids to rank (candidates.set).
	CandidateSets map[string][]string `yaml:"candidate_sets"`
	// Load bounds a replica's concurrent work and recent history.
	Load serve.LoadOptions `yaml:"load"`
	// Only restricts a replica to some use cases (flag --use-cases).
	Only []string `yaml:"-"`
}

// ReplicaOptions returns the replica options the config describes.
func (s ServeConfig) ReplicaOptions(reg *ingest.Registry) serve.ReplicaOptions {
	return serve.ReplicaOptions{Registry: reg, UseCases: s.UseCases, Checks: s.Checks, KeepVersions: s.KeepVersions,
		Only: s.Only, CandidateSets: s.CandidateSets, Load: s.Load}
}

// AdminToken loads the admin token (nil when none is configured).
func (s ServeConfig) AdminToken() ([]byte, error) {
	return snapshot.LoadKey(s.AdminTokenFile, s.AdminTokenEnv, "serve.admin_token")
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
		DataDir: "data",
		Kafka:   stream.ClientOptions{Brokers: []string{"localhost:9092"}},
		Topics:  stream.DefaultTopics(),
		Broker:  BrokerConfig{Port: 9092, EventPartitions: 4},
		Ingest: IngestConfig{Group: "unirec-ingest", TransactionalID: "unirec-ingest-" + host + "-" + fmt.Sprint(os.Getpid()),
			Changelog: "unirec.ingest.changelog", AllowedLateness: 5 * time.Second, MaxEventBytes: 64 << 10, Listen: "localhost:8081"},
		Model:   online.DefaultModelConfig(),
		Trainer: TrainerConfig{CommitInterval: time.Second, Listen: "localhost:8082"},
		Snapshot: SnapshotConfig{Interval: time.Second, FullInterval: 5 * time.Minute, Encoding: snapshot.EncodingFloat32,
			TransactionalID: "unirec-snapshot-publisher", ModelID: "unirec"},
		Serve: ServeConfig{Listen: "localhost:8080", KeepVersions: 8, Checks: serve.DefaultChecks()},
		Demo:  DemoConfig{Enabled: true, Rate: 50, Seed: 1},
	}
}

// LoadConfig reads a YAML config file over the defaults. Unknown fields
// are errors, so a typo cannot silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, cfg.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("cannot read config %q: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, fmt.Errorf("cannot parse config %q: %w", path, err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("invalid config %q: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every section; the error names the field to fix.
func (c *Config) Validate() error {
	c.Topics.EnsureDefaults()
	if len(c.Canvases) == 0 {
		c.Canvases = ingest.DefaultCanvases()
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
	if c.Ingest.AllowedLateness < 0 {
		return errors.New("ingest.allowed_lateness must not be negative")
	}
	if c.Ingest.Group == "" || c.Ingest.TransactionalID == "" || c.Ingest.Changelog == "" {
		return errors.New("ingest.group, ingest.transactional_id and ingest.changelog are required")
	}
	if err := c.Model.Validate(); err != nil {
		return err
	}
	if c.Snapshot.Interval <= 0 {
		return errors.New("snapshot.interval must be positive")
	}
	if c.Snapshot.FullInterval < c.Snapshot.Interval {
		return fmt.Errorf("snapshot.full_interval (%s) must be at least snapshot.interval (%s)", c.Snapshot.FullInterval, c.Snapshot.Interval)
	}
	if err := c.Snapshot.Encoding.Validate(); err != nil {
		return err
	}
	if c.Snapshot.TransactionalID == "" {
		return errors.New("snapshot.transactional_id is required")
	}
	if _, err := c.Snapshot.Key(); err != nil {
		return err
	}
	if _, err := c.Serve.AdminToken(); err != nil {
		return err
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

// Registry builds the canvas registry.
func (c *Config) Registry() (*ingest.Registry, error) { return ingest.NewRegistry(c.Canvases) }
