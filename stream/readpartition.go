package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadPartition calls fn for every committed record of topic/partition from
// the start up to its end at the time of the call, in offset order. It is
// how stages restore state from a changelog.
func ReadPartition(ctx context.Context, copts ClientOptions, topic string, partition int32, fn func(*kgo.Record) error) error {
	cl, err := kgo.NewClient(append(copts.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create reader of %s/%d: %w", topic, partition, err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("cannot list end offsets of %s: %w", topic, err)
	}
	end, ok := ends.Lookup(topic, partition)
	if !ok {
		return fmt.Errorf("cannot find end offset of %s/%d", topic, partition)
	}
	if end.Err != nil {
		return fmt.Errorf("cannot find end offset of %s/%d: %w", topic, partition, end.Err)
	}
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("cannot list start offsets of %s: %w", topic, err)
	}
	next := int64(0)
	if start, ok := starts.Lookup(topic, partition); ok && start.Err == nil {
		next = start.Offset
	}
	for next < end.Offset {
		pollCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fetches.Err0(); err != nil && err != context.DeadlineExceeded {
			return fmt.Errorf("cannot read %s/%d: %w", topic, partition, err)
		}
		var ferr error
		fetches.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if ferr == nil && !r.Attrs.IsControl() && r.Offset < end.Offset {
				ferr = fn(r)
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
