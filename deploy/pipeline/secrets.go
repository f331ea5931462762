package pipeline

import (
	"crypto/tls"
	"fmt"
	"path/filepath"

	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// Secrets are what a config names but does not hold: keys and tokens read
// from files or environment variables by LoadSecrets.
type Secrets struct {
	// SnapshotKey signs (trainer) and verifies (replicas) snapshots; nil
	// when none is configured.
	SnapshotKey []byte
	// AdminToken guards rollback and resume; nil disables them.
	AdminToken []byte
	// APIToken is required by recommend, batch, use-cases and model when
	// set; nil leaves the API open.
	APIToken []byte
}

// LoadSecrets reads, once and after Validate, the Kafka client's TLS files
// and SASL password, the snapshot HMAC key and the admin and API tokens;
// the error names the field. Until it has run, c's Kafka options refuse to
// connect.
func (c *Config) LoadSecrets() error {
	if err := c.Kafka.Load(); err != nil {
		return err
	}
	var s Secrets
	var err error
	if s.SnapshotKey, err = snapshot.LoadKey(c.Snapshot.HMACKeyFile, c.Snapshot.HMACKeyEnv, "snapshot.hmac_key"); err != nil {
		return err
	}
	if s.AdminToken, err = snapshot.LoadSecret(c.Serve.AdminTokenFile, c.Serve.AdminTokenEnv, "serve.admin_token", "token"); err != nil {
		return err
	}
	if s.APIToken, err = snapshot.LoadSecret(c.Serve.APITokenFile, c.Serve.APITokenEnv, "serve.api_token", "token"); err != nil {
		return err
	}
	c.Secrets = s
	return nil
}

// brokerOptions resolves the embedded broker's files and secrets (read
// only by StartBroker: no other command needs them).
func (c *Config) brokerOptions() (stream.BrokerOptions, error) {
	o := stream.BrokerOptions{Port: c.Broker.Port, DataDir: filepath.Join(c.DataDir, "broker"), Partitions: c.Broker.EventPartitions}
	if t := c.Broker.TLS; t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return o, fmt.Errorf("broker.tls: cannot load cert_file/key_file: %w", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	for i, u := range c.Broker.Users {
		pass, err := stream.Secret(fmt.Sprintf("broker.users[%d].password", i), u.PasswordFile, u.PasswordEnv)
		if err != nil {
			return o, err
		}
		if u.User == "" || pass == "" {
			return o, fmt.Errorf("broker.users[%d]: user and a password (password_file or password_env) are required", i)
		}
		switch u.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return o, fmt.Errorf("broker.users[%d].mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", i)
		}
		o.Users = append(o.Users, stream.BrokerUser{Mechanism: u.Mechanism, User: u.User, Password: pass})
	}
	return o, nil
}
