package stream

import (
	"crypto/tls"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerOptions configures the embedded Kafka-protocol broker.
type BrokerOptions struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free port.
	Port int
	// DataDir persists the log; empty keeps everything in memory.
	DataDir string
	// Partitions is the default partition count of auto-created topics.
	Partitions int
	// TLS, when set, makes the broker accept only TLS connections.
	TLS *tls.Config
	// Users, when set, enables SASL: only these users can connect.
	Users []BrokerUser
}

// BrokerUser is a SASL user of the embedded broker.
type BrokerUser struct {
	Mechanism string // PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512
	User      string
	Password  string
}

// Broker is an embedded single-node Kafka-protocol broker (franz-go kfake).
// Outside clients reach it over plain TCP at Addr.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// StartBroker starts the embedded broker.
func StartBroker(o BrokerOptions) (*Broker, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(o.Port), kfake.AllowAutoTopicCreation()}
	if o.Partitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(o.Partitions))
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	if len(o.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.Users {
			opts = append(opts, kfake.Superuser(u.Mechanism, u.User, u.Password))
		}
	}
	if o.DataDir != "" {
		if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create broker data dir %q: %w", o.DataDir, err)
		}
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot start embedded broker on port %d: %w", o.Port, err)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr returns host:port of the broker.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and flushes its data dir.
func (b *Broker) Close() { b.cluster.Close() }
