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
// topic, asking next for more (each call emits one or more) until n. With
// txn > 0 the records are produced in transactions of txn records, as
// ingest produces examples.
func produce(ctx context.Context, copts stream.ClientOptions, topic string, specs []stream.TopicSpec, n, txn int, progress io.Writer,
	next func(emit func(key, value []byte)) error) error {
	opts := append(copts.Opts(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if txn > 0 {
		opts = append(opts, kgo.TransactionalID("unirec-bench-"+topic))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("cannot create producer: %w", err)
	}
	defer cl.Close()
	if err := stream.EnsureTopics(ctx, cl, specs); err != nil {
		return err
	}
	var txnErr error
	endTxn := func() {
		if txnErr == nil {
			txnErr = cl.Flush(ctx)
		}
		if txnErr == nil {
			txnErr = cl.EndTransaction(ctx, kgo.TryCommit)
		}
	}
	bar := bench.NewProgress(progress, "produce", n)
	var failed atomic.Value
	produced := 0
	emit := func(key, value []byte) {
		if produced == n || txnErr != nil {
			return
		}
		if txn > 0 && produced%txn == 0 {
			if produced > 0 {
				endTxn()
			}
			if txnErr == nil {
				txnErr = cl.BeginTransaction()
			}
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, err)
			}
		})
		produced++
		bar.Update(produced)
	}
	for produced < n && txnErr == nil {
		if err := next(emit); err != nil {
			return err
		}
	}
	if txn > 0 {
		endTxn()
	}
	if txnErr != nil {
		return fmt.Errorf("cannot produce a transaction to %q: %w", topic, txnErr)
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
