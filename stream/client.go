package stream

import (
	"errors"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientOptions says how to reach a Kafka cluster.
type ClientOptions struct {
	Brokers []string    `yaml:"brokers"`
	TLS     TLSOptions  `yaml:"tls"`
	SASL    SASLOptions `yaml:"sasl"`

	sec *security // loaded by Load
}

// Load reads the TLS files and the SASL secret once; errors name the field.
// Options that are never loaded connect in plain text without SASL.
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

// Opts returns the franz-go options shared by every unirec client.
func (o ClientOptions) Opts() []kgo.Opt {
	return append([]kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.ProducerBatchMaxBytes(int32(MaxRecordBytes + 64<<10)),
		kgo.MaxBufferedRecords(100_000),
	}, o.sec.opts()...)
}
