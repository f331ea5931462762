package stream

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Stage is the logic of an exactly-once consume-transform-produce loop.
// Every method is called from the loop's goroutine only.
type Stage interface {
	// Restore rebuilds the state of newly assigned partitions before any of
	// their records is processed.
	Restore(ctx context.Context, partitions []int32) error
	// Revoke forgets the state of partitions that moved away.
	Revoke(partitions []int32)
	// Process handles one batch of records (possibly empty, on a tick) and
	// emits output records; they are produced in the open transaction, to
	// the partition each names (Record.Partition).
	Process(ctx context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error
	// Commit is called after the batch's transaction committed.
	Commit()
	// Abort is called when a transaction did not commit: every state change
	// since the last commit must be dropped. It returns the partitions the
	// stage still owns; the loop restores them before the next batch, as
	// consumption rewinds to the last committed offsets.
	Abort() (restore []int32)
}

// TxLoopOptions configures RunTxLoop.
type TxLoopOptions struct {
	Client          ClientOptions
	Group           string
	TransactionalID string
	Topic           string
	// Tick is the longest time between two Process calls when no records
	// arrive, so that time-based work (closing join windows) still happens.
	Tick time.Duration
	Logf func(format string, args ...any)
	// ExtraOpts are appended to the client options (tests shorten timeouts).
	ExtraOpts []kgo.Opt
}

// RunTxLoop consumes opts.Topic in a consumer group and runs stage on every
// batch inside a Kafka transaction that also commits the consumed offsets:
// outputs and offsets become visible together or not at all. It returns when
// ctx ends.
func RunTxLoop(ctx context.Context, opts TxLoopOptions, stage Stage) error {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var mu sync.Mutex
	var assigned []int32
	kopts := append(opts.Client.Opts(),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(opts.Topic),
		kgo.TransactionalID(opts.TransactionalID),
		// A stage names the partition of every record it emits: a
		// changelog record must land in the partition of its state.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: assigned %v", opts.TransactionalID, m[opts.Topic])
			mu.Lock()
			assigned = append(assigned, m[opts.Topic]...)
			mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: revoked %v", opts.TransactionalID, m[opts.Topic])
			stage.Revoke(m[opts.Topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: lost %v", opts.TransactionalID, m[opts.Topic])
			stage.Revoke(m[opts.Topic])
		}),
	)
	kopts = append(kopts, opts.ExtraOpts...)
	sess, err := kgo.NewGroupTransactSession(kopts...)
	if err != nil {
		return fmt.Errorf("cannot create transactional session %q: %w", opts.TransactionalID, err)
	}
	defer sess.Close()
	tick := opts.Tick
	if tick <= 0 {
		tick = 200 * time.Millisecond
	}
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, tick)
		fetches := sess.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		mu.Lock()
		restore := assigned
		assigned = nil
		mu.Unlock()
		if len(restore) > 0 {
			if err := stage.Restore(ctx, restore); err != nil {
				return fmt.Errorf("cannot restore state of partitions %v: %w", restore, err)
			}
		}
		fetches.EachError(func(t string, p int32, err error) {
			if opts.Logf != nil && err != context.DeadlineExceeded {
				opts.Logf("fetch %s/%d: %v", t, p, err)
			}
		})
		again, err := runTx(ctx, sess, stage, fetches.Records())
		if err != nil {
			return err
		}
		if len(again) > 0 {
			logf("txloop %s: transaction aborted, restoring %v", opts.TransactionalID, again)
			mu.Lock()
			assigned = append(assigned, again...)
			mu.Unlock()
		}
	}
	return nil
}

// runTx processes one batch in one transaction. After an abort it returns
// the partitions whose state must be restored.
func runTx(ctx context.Context, sess *kgo.GroupTransactSession, stage Stage, recs []*kgo.Record) ([]int32, error) {
	if err := sess.Begin(); err != nil {
		return nil, fmt.Errorf("cannot begin transaction: %w", err)
	}
	var produceErr error
	var once sync.Once
	emit := func(r *kgo.Record) {
		sess.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				once.Do(func() { produceErr = err })
			}
		})
	}
	if err := stage.Process(ctx, recs, emit); err != nil {
		_, _ = sess.End(ctx, kgo.TryAbort)
		return nil, fmt.Errorf("cannot process batch: %w", err)
	}
	try := kgo.TryCommit
	if err := sess.Client().Flush(ctx); err != nil || produceErr != nil {
		try = kgo.TryAbort
	}
	committed, err := sess.End(ctx, try)
	var restore []int32
	if committed {
		stage.Commit()
	} else {
		restore = stage.Abort()
	}
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("cannot end transaction: %w", err)
	}
	return restore, nil
}
