package throughput

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/stream"
)

// produce creates the topics of specs and produces exactly n records to
// topic, asking next for more (each call emits one or more) until n.
func produce(ctx context.Context, copts stream.ClientOptions, topic string, specs []stream.TopicSpec, n int, progress io.Writer,
	next func(emit func(key, value []byte)) error) error {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("cannot create producer: %w", err)
	}
	defer cl.Close()
	if err := stream.EnsureTopics(ctx, cl, specs); err != nil {
		return err
	}
	bar := bench.NewProgress(progress, "produce", n)
	var failed atomic.Value
	produced := 0
	emit := func(key, value []byte) {
		if produced == n {
			return
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, err)
			}
		})
		produced++
		bar.Update(produced)
	}
	for produced < n {
		if err := next(emit); err != nil {
			return err
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("cannot flush producer: %w", err)
	}
	if err, ok := failed.Load().(error); ok {
		return fmt.Errorf("cannot produce to %q: %w", topic, err)
	}
	bar.Done(n)
	return nil
}
