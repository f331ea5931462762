package stream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// selfSigned writes a certificate for 127.0.0.1 and returns its files and
// the server TLS config.
func selfSigned(t *testing.T) (certFile, keyFile string, cfg *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unirec-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, &tls.Config{Certificates: []tls.Certificate{cert}}
}

// Clients configured with TLS (CA from a file) and SASL SCRAM (password
// from the environment) produce to and consume from a broker that requires
// both; a client with a wrong password is refused.
func TestTLSAndSASLSCRAM(t *testing.T) {
	certFile, _, serverTLS := selfSigned(t)
	b, err := StartBroker(BrokerOptions{TLS: serverTLS, Users: []BrokerUser{{Mechanism: "SCRAM-SHA-256", User: "unirec", Password: "s3cret"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t.Setenv("UNIREC_TEST_KAFKA_PASSWORD", "s3cret")
	opts := ClientOptions{Brokers: []string{b.Addr()}, TLS: TLSOptions{Enabled: true, CAFile: certFile},
		SASL: SASLOptions{Mechanism: "SCRAM-SHA-256", User: "unirec", PasswordEnv: "UNIREC_TEST_KAFKA_PASSWORD"}}
	if err := opts.Load(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts.Opts(), kgo.DefaultProduceTopic("secure"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("secure"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce over TLS+SCRAM: %v", err)
	}
	if f := cl.PollFetches(ctx); f.Err0() != nil || len(f.Records()) != 1 || string(f.Records()[0].Value) != "hello" {
		t.Fatalf("consume over TLS+SCRAM: %v %d records", f.Err0(), len(f.Records()))
	}

	t.Setenv("UNIREC_TEST_KAFKA_PASSWORD", "wrong")
	if err := opts.Load(); err != nil {
		t.Fatal(err)
	}
	bad, err := kgo.NewClient(opts.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Ping(ctx)
	if err == nil { // kfake drops the connection (EOF); Kafka answers SASL_AUTHENTICATION_FAILED
		t.Fatal("a client with a wrong password could talk to the broker")
	}
}

func TestSecurityConfigErrorsNameTheField(t *testing.T) {
	f := func(o ClientOptions, want string) {
		t.Helper()
		err := o.Load()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error containing %q", err, want)
		}
	}
	f(ClientOptions{SASL: SASLOptions{Mechanism: "GSSAPI", User: "u", PasswordEnv: "HOME"}}, "kafka.sasl.mechanism")
	f(ClientOptions{SASL: SASLOptions{Mechanism: "PLAIN", User: "u"}}, "password_file or password_env")
	f(ClientOptions{SASL: SASLOptions{Mechanism: "PLAIN", User: "u", PasswordEnv: "UNIREC_SURELY_UNSET"}}, "UNIREC_SURELY_UNSET is not set")
	f(ClientOptions{TLS: TLSOptions{Enabled: true, CAFile: "/nonexistent.pem"}}, "kafka.tls.ca_file")
	f(ClientOptions{TLS: TLSOptions{Enabled: true, CertFile: "c"}}, "cert_file and key_file go together")
}
