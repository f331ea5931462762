package stream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Options never loaded refuse to connect, even to a plaintext broker: they
// may name TLS or SASL that nothing read. Plaintext options connect.
func TestUnloadedOptionsRefuseToConnect(t *testing.T) {
	b, err := StartBroker(BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ping := func(o ClientOptions) error {
		cl, err := kgo.NewClient(o.Opts()...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := ping(ClientOptions{Brokers: []string{b.Addr()}}); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("unloaded options: got %v, want ErrNotLoaded", err)
	}
	loaded := ClientOptions{Brokers: []string{b.Addr()}}
	if err := loaded.Load(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []ClientOptions{loaded, Plaintext(b.Addr())} {
		if err := ping(o); err != nil {
			t.Errorf("loaded options: %v", err)
		}
	}
}
