package stream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLSOptions configures TLS to the brokers.
type TLSOptions struct {
	Enabled bool `yaml:"enabled"`
	// CAFile verifies the brokers' certificates (PEM); empty uses the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate for mutual TLS.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// SASLOptions configures SASL authentication. The password comes from a
// file or an environment variable, never from the config itself or a flag.
type SASLOptions struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty disables SASL.
	Mechanism    string `yaml:"mechanism"`
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
}

// Secret reads a secret from a file (trailing newline trimmed) or from an
// environment variable; field names the config field for errors.
func Secret(field, file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", fmt.Errorf("%s: set %s_file or %s_env, not both", field, field, field)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s_file: cannot read %q: %w", field, file, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s_env: environment variable %s is not set", field, env)
		}
		return v, nil
	}
	return "", nil
}

// loadTLS builds the client TLS config.
func (o TLSOptions) load() (*tls.Config, error) {
	if !o.Enabled {
		if o.CAFile != "" || o.CertFile != "" {
			return nil, fmt.Errorf("kafka.tls: files are set but tls.enabled is false")
		}
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: cannot read %q: %w", o.CAFile, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %q holds no PEM certificate", o.CAFile)
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("kafka.tls: cert_file and key_file go together")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: cannot load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// load builds the SASL mechanism.
func (o SASLOptions) load() (sasl.Mechanism, error) {
	if o.Mechanism == "" {
		return nil, nil
	}
	if o.User == "" {
		return nil, fmt.Errorf("kafka.sasl.user is required with mechanism %s", o.Mechanism)
	}
	pass, err := Secret("kafka.sasl.password", o.PasswordFile, o.PasswordEnv)
	if err != nil {
		return nil, err
	}
	if pass == "" {
		return nil, fmt.Errorf("kafka.sasl: set password_file or password_env")
	}
	switch o.Mechanism {
	case "PLAIN":
		return plain.Auth{User: o.User, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: o.User, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: o.User, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", o.Mechanism)
}

// security holds the loaded TLS config and SASL mechanism.
type security struct {
	tls  *tls.Config
	mech sasl.Mechanism
}

func (s *security) opts() []kgo.Opt {
	var out []kgo.Opt
	if s.tls != nil {
		out = append(out, kgo.DialTLSConfig(s.tls.Clone()))
	}
	if s.mech != nil {
		out = append(out, kgo.SASL(s.mech))
	}
	return out
}
