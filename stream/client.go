package stream

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOptions says how to reach a Kafka cluster.
type ClientOptions struct {
	Brokers []string    `yaml:"brokers"`
	TLS     TLSOptions  `yaml:"tls"`
	SASL    SASLOptions `yaml:"sasl"`

	sec *security // loaded by Load (or Plaintext)
}

// ErrNotLoaded is what every connection of options never loaded fails
// with: unloaded options might name TLS or SASL that nothing read, and a
// client must not fall back to plain text.
var ErrNotLoaded = errors.New("kafka client options were never loaded (ClientOptions.Load): refusing to connect")

// Plaintext returns loaded options of brokers without TLS or SASL (the
// embedded broker, tests, benchmarks).
func Plaintext(brokers ...string) ClientOptions {
	return ClientOptions{Brokers: brokers, sec: &security{}}
}

// Load reads the TLS files and the SASL secret once; errors name the field.
// Options that are never loaded fail every connection with ErrNotLoaded.
func (o *ClientOptions) Load() error {
	t, err := o.TLS.load()
	if err != nil {
		return err
	}
	m, err := o.SASL.load()
	if err != nil {
		return err
	}
	o.sec = &security{tls: t, mech: m}
	return nil
}

// Validate checks that the options can reach a cluster.
func (o ClientOptions) Validate() error {
	if len(o.Brokers) == 0 {
		return errors.New("kafka.brokers: at least one host:port is required")
	}
	for _, b := range o.Brokers {
		if !strings.Contains(b, ":") {
			return errors.New("kafka.brokers: " + b + " is not host:port")
		}
	}
	return nil
}

// Opts returns the franz-go options shared by every unirec client. A
// client of options never loaded fails every connection with ErrNotLoaded.
func (o ClientOptions) Opts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ProducerBatchMaxBytes(int32(MaxRecordBytes + 64<<10)),
		kgo.MaxBufferedRecords(100_000),
	}
	if o.sec == nil {
		return append(opts, kgo.Dialer(func(context.Context, string, string) (net.Conn, error) { return nil, ErrNotLoaded }))
	}
	return append(opts, o.sec.opts()...)
}
