package stream

import (
	"context"
	"fmt"
	"slices"
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
	// Revoke forgets the state of partitions that moved away (possibly
	// partitions assigned and revoked before they were restored).
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
	// CoTopics are consumed with Topic and co-partitioned with it: they have
	// as many partitions, and partition p of each belongs to the stage's
	// partition p (its records share p's state). The group then uses the
	// range balancer, which gives equal-numbered partitions of equally
	// partitioned topics to the same member (the default cooperative-sticky
	// balancer does not).
	CoTopics []string
	// Tick is the longest time between two Process calls when no records
	// arrive, so that time-based work (closing join windows) still happens.
	Tick time.Duration
	Logf func(format string, args ...any)
	// ExtraOpts are appended to the client options (tests shorten timeouts).
	ExtraOpts []kgo.Opt
}

// RunTxLoop consumes opts.Topic (and opts.CoTopics) in a consumer group and runs stage on every
// batch inside a Kafka transaction that also commits the consumed offsets:
// outputs and offsets become visible together or not at all. It returns when
// ctx ends.
func RunTxLoop(ctx context.Context, opts TxLoopOptions, stage Stage) error {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// Assignments and revocations arrive on the client's goroutines, even
	// while a batch is processed: they are queued, in order, and applied
	// by the loop between batches (a revocation during a batch makes the
	// session abort it).
	var mu sync.Mutex
	var changes []ownership
	queue := func(revoke bool, parts []int32) {
		mu.Lock()
		changes = append(changes, ownership{revoke: revoke, parts: parts})
		mu.Unlock()
	}
	kopts := append(opts.Client.Opts(),
		kgo.ConsumerGroup(opts.Group),
		kgo.ConsumeTopics(append([]string{opts.Topic}, opts.CoTopics...)...),
		kgo.TransactionalID(opts.TransactionalID),
		// A stage names the partition of every record it emits: a
		// changelog record must land in the partition of its state.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: assigned %v", opts.TransactionalID, m)
			queue(false, stagePartitions(m))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: revoked %v", opts.TransactionalID, m)
			queue(true, stagePartitions(m))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			logf("txloop %s: lost %v", opts.TransactionalID, m)
			queue(true, stagePartitions(m))
		}),
	)
	if len(opts.CoTopics) > 0 {
		kopts = append(kopts, kgo.Balancers(kgo.RangeBalancer()))
	}
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
	o := owner{stage: stage, owned: map[int32]bool{}}
	take := func() []ownership {
		mu.Lock()
		defer mu.Unlock()
		c := changes
		changes = nil
		return c
	}
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, tick)
		fetches := sess.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err := o.apply(ctx, take()); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while restoring
			}
			return err
		}
		fetches.EachError(func(t string, p int32, err error) {
			if opts.Logf != nil && err != context.DeadlineExceeded {
				opts.Logf("fetch %s/%d: %v", t, p, err)
			}
		})
		again, err := runTx(ctx, sess, stage, o.filter(fetches.Records()), func() { o.revokeOnly(take()) })
		if err != nil {
			return err
		}
		if len(again) > 0 {
			logf("txloop %s: transaction aborted, restoring %v", opts.TransactionalID, again)
			if err := o.apply(ctx, []ownership{{parts: again}}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

// stagePartitions is the stage partitions of an assignment or revocation
// of the consumed topics: the union of their partition numbers, sorted
// (co-partitioned topics name the same ones).
func stagePartitions(m map[string][]int32) []int32 {
	var parts []int32
	for _, ps := range m {
		for _, p := range ps {
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	slices.Sort(parts)
	return parts
}

// ownership is one assignment or revocation of partitions.
type ownership struct {
	revoke bool
	parts  []int32
	done   bool // a revocation already passed to the stage
}

// owner tracks which partitions the stage owns, applying queued changes on
// the loop's goroutine.
type owner struct {
	stage Stage
	owned map[int32]bool
	keep  []ownership // assignments seen by revokeOnly, applied next
}

// apply applies changes in order: revocations at once, then one restore of
// the partitions assigned and not revoked since.
func (o *owner) apply(ctx context.Context, changes []ownership) error {
	changes = append(o.keep, changes...)
	o.keep = nil
	restore := map[int32]bool{}
	for _, c := range changes {
		for _, p := range c.parts {
			if c.revoke {
				delete(restore, p)
				delete(o.owned, p)
			} else {
				restore[p] = true
			}
		}
		if c.revoke && !c.done && len(c.parts) > 0 {
			o.stage.Revoke(c.parts)
		}
	}
	if len(restore) == 0 {
		return nil
	}
	parts := make([]int32, 0, len(restore))
	for p := range restore {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	if err := o.stage.Restore(ctx, parts); err != nil {
		return fmt.Errorf("cannot restore state of partitions %v: %w", parts, err)
	}
	for _, p := range parts {
		o.owned[p] = true
	}
	return nil
}

// revokeOnly applies the revocations among changes (after a transaction
// ended, before the stage commits or aborts) and keeps assignments for the
// next apply.
func (o *owner) revokeOnly(changes []ownership) {
	for _, c := range changes {
		if !c.revoke {
			o.keep = append(o.keep, c)
			continue
		}
		for _, p := range c.parts {
			delete(o.owned, p)
		}
		if len(c.parts) > 0 {
			o.stage.Revoke(c.parts)
		}
		c.done = true
		o.keep = append(o.keep, c) // cancels earlier assignments of the same partitions
	}
}

// filter drops records of partitions the stage does not own (fetched
// before a revocation); the session aborts such a batch anyway.
func (o *owner) filter(recs []*kgo.Record) []*kgo.Record {
	out := recs[:0]
	for _, r := range recs {
		if o.owned[r.Partition] {
			out = append(out, r)
		}
	}
	return out
}

// runTx processes one batch in one transaction. After an abort it returns
// the partitions whose state must be restored.
func runTx(ctx context.Context, sess *kgo.GroupTransactSession, stage Stage, recs []*kgo.Record, settle func()) ([]int32, error) {
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
	settle()
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
