package online

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// Trainer leadership. Several trainer processes may run against one
// examples topic: each trains its own Pebble copy of the model (training is
// deterministic, so a standby is always hot), and only the leader
// publishes snapshots. Leadership is membership of a Kafka consumer group
// on a one-partition lease topic: the member assigned partition 0 leads.
// When the leader dies its session times out and the group hands the
// partition to a standby. A leader that was paused (a zombie) learns it
// lost the partition only when it heartbeats again, so the lease alone
// cannot stop it from publishing once more: producer fencing does. Every
// trainer's snapshot publisher uses the same transactional id, and a new
// leader's publisher initialising it bumps the producer epoch, so the
// zombie's next transaction fails.

// LeaseOptions configures a Lease.
type LeaseOptions struct {
	Client stream.ClientOptions
	// Topic is the one-partition lease topic (created if missing).
	Topic string
	// Group is the consumer group of the trainers of one model.
	Group string
	// SessionTimeout is how long a silent leader keeps the lease.
	SessionTimeout time.Duration
	Logf           func(format string, args ...any)
}

// Lease is this process' membership of the trainers' group.
type Lease struct {
	opts    LeaseOptions
	cl      *kgo.Client
	mu      sync.Mutex
	held    bool
	changed chan struct{} // closed and replaced on every change
	done    chan struct{}
}

// JoinLease creates the lease topic if needed and joins the group; the
// lease is held once the group assigns partition 0 to this member.
func JoinLease(ctx context.Context, opts LeaseOptions) (*Lease, error) {
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.Topic == "" || opts.Group == "" {
		return nil, fmt.Errorf("trainer.lease_topic and trainer.lease_group are required")
	}
	l := &Lease{opts: opts, changed: make(chan struct{}), done: make(chan struct{})}
	admin, err := kgo.NewClient(opts.Client.Opts()...)
	if err != nil {
		return nil, fmt.Errorf("cannot create kafka client: %w", err)
	}
	err = stream.EnsureTopics(ctx, admin, []stream.TopicSpec{{Name: opts.Topic, Partitions: 1}})
	admin.Close()
	if err != nil {
		return nil, err
	}
	set := func(held bool) func(context.Context, *kgo.Client, map[string][]int32) {
		return func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			if slices.Contains(parts[opts.Topic], 0) {
				l.set(held)
			}
		}
	}
	l.cl, err = kgo.NewClient(append(opts.Client.Opts(),
		kgo.ConsumerGroup(opts.Group), kgo.ConsumeTopics(opts.Topic),
		kgo.SessionTimeout(opts.SessionTimeout), kgo.HeartbeatInterval(opts.SessionTimeout/5),
		kgo.RebalanceTimeout(opts.SessionTimeout), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(set(true)), kgo.OnPartitionsRevoked(set(false)), kgo.OnPartitionsLost(set(false)),
	)...)
	if err != nil {
		return nil, fmt.Errorf("cannot join trainer group %q: %w", opts.Group, err)
	}
	go l.poll()
	return l, nil
}

// poll keeps the group member consuming the (empty) lease topic.
func (l *Lease) poll() {
	defer close(l.done)
	for {
		if f := l.cl.PollFetches(context.Background()); f.IsClientClosed() {
			return
		}
	}
}

func (l *Lease) set(held bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == held {
		return
	}
	l.held = held
	close(l.changed)
	l.changed = make(chan struct{})
	if l.opts.Logf != nil {
		l.opts.Logf("trainer: lease %s (group %q)", map[bool]string{true: "acquired: leading", false: "lost: standby"}[held], l.opts.Group)
	}
}

// Held says whether this process leads, and returns a channel closed at
// the next change.
func (l *Lease) Held() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held, l.changed
}

// Close leaves the group, handing the lease to a standby at once.
func (l *Lease) Close() {
	l.cl.Close()
	<-l.done
	l.set(false)
}

// WhileLeading runs fn with a context that ends when the lease is lost,
// every time the lease is acquired, until ctx ends. An error of fn while
// the lease is still held ends WhileLeading with it.
func (l *Lease) WhileLeading(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		held, changed := l.Held()
		if !held {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
				continue
			}
		}
		lctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-changed:
			case <-lctx.Done():
			}
			cancel()
		}()
		err := fn(lctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if still, _ := l.Held(); err != nil && still {
			return err
		}
	}
}
