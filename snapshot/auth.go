package snapshot

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// hmacHeader is the record header holding the hex HMAC-SHA256 of the
// record value (manifests and control records).
const hmacHeader = "unirec.hmac"

// ErrUnauthenticated is returned for a manifest or control record whose
// HMAC is missing or wrong while a key is configured.
var ErrUnauthenticated = errors.New("unauthenticated snapshot record")

// MinKeyBytes is the shortest HMAC key accepted.
const MinKeyBytes = 16

// LoadKey reads an HMAC key from a file (its trimmed content) or, when
// file is empty, from the environment variable env. Both empty means no
// key: snapshots are not authenticated. field names the config fields in
// errors (without _file/_env).
func LoadKey(file, env, field string) ([]byte, error) { return LoadSecret(file, env, field, "key") }

// LoadSecret reads a secret of at least MinKeyBytes as LoadKey does; what
// says in errors what it holds ("key", "token"), field names the config
// fields (without _file/_env).
func LoadSecret(file, env, field, what string) ([]byte, error) {
	v, err := stream.Secret(field, file, env)
	if err != nil || (file == "" && env == "") {
		return nil, err
	}
	k := strings.TrimSpace(v)
	if k == "" && env != "" {
		return nil, fmt.Errorf("%s_env: environment variable %s is empty", field, env)
	}
	if len(k) < MinKeyBytes {
		name := field + "_env" // the field that was set
		if file != "" {
			name = field + "_file"
		}
		return nil, fmt.Errorf("%s: %s must be at least %d bytes, got %d", name, what, MinKeyBytes, len(k))
	}
	return []byte(k), nil
}

func mac(key, value []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(value)
	return hex.EncodeToString(h.Sum(nil))
}

// sign adds the HMAC header to r when key is set.
func sign(key []byte, r *kgo.Record) {
	if key != nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: hmacHeader, Value: []byte(mac(key, r.Value))})
	}
}

// The signature states of a manifest or control record (List).
const (
	SignatureValid     = "valid"     // its HMAC is the configured key's
	SignatureUnsigned  = "unsigned"  // it has no HMAC header
	SignatureForged    = "forged"    // its HMAC is not the configured key's
	SignatureUnchecked = "unchecked" // it has an HMAC but no key is configured to check it
)

// signature says how r is signed, as far as key can tell.
func signature(key []byte, r *kgo.Record) string {
	for _, h := range r.Headers {
		if h.Key != hmacHeader {
			continue
		}
		switch {
		case key == nil:
			return SignatureUnchecked
		case hmac.Equal(h.Value, []byte(mac(key, r.Value))):
			return SignatureValid
		}
		return SignatureForged
	}
	return SignatureUnsigned
}

// verify checks r's HMAC header when key is set.
func verify(key []byte, r *kgo.Record) error {
	if key == nil {
		return nil
	}
	switch signature(key, r) {
	case SignatureValid:
		return nil
	case SignatureForged:
		return fmt.Errorf("%w: HMAC of record at offset %d does not match", ErrUnauthenticated, r.Offset)
	}
	return fmt.Errorf("%w: record at offset %d has no HMAC", ErrUnauthenticated, r.Offset)
}
