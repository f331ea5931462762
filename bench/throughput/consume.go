package throughput

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// consume reads topic from its start, read committed, with a plain
// franz-go consumer and calls fn on each record, counting them in count,
// until ctx ends.
func consume(ctx context.Context, copts stream.ClientOptions, topic string, count *atomic.Int64, fn func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("cannot create consumer of %q: %w", topic, err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		f := cl.PollFetches(ctx)
		if err := f.Err0(); err != nil && ctx.Err() == nil {
			return fmt.Errorf("cannot fetch %q: %w", topic, err)
		}
		f.EachRecord(func(r *kgo.Record) {
			if fn != nil {
				fn(r)
			}
			count.Add(1)
		})
	}
	return ctx.Err()
}

// rawConsume measures the raw franz-go consume rate of n records of
// topic: the ceiling a stage is compared with.
func rawConsume(ctx context.Context, copts stream.ClientOptions, topic string, n int, progress io.Writer) (phase, error) {
	var count atomic.Int64
	return runPhase(ctx, "raw consume", n, progress, count.Load, func(ctx context.Context) error {
		return consume(ctx, copts, topic, &count, nil)
	})
}
