package serve

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// limiter bounds the requests a replica works on at once. A request is
// admitted before its body is decoded: when as many requests as there are
// slots and queue places are already in, it is shed at once (HTTP 429)
// without decoding anything, instead of queueing into collapse. An
// admitted request takes a slot at once when one is free; otherwise it
// waits (counted in the queue) for at most its own latency budget, and is
// answered by the fallback when that runs out.
type limiter struct {
	slots chan struct{}
	// admitted counts requests in flight or queued (decoding their body or
	// waiting for a slot); max bounds it: in flight plus queue.
	admitted atomic.Int64
	max      int64
}

// Errors of the limiter.
var (
	errShed       = errors.New("overloaded: queue full")
	errQueueTimed = errors.New("overloaded: no slot within the latency budget")
)

func newLimiter(inFlight, queue int) *limiter {
	return &limiter{slots: make(chan struct{}, inFlight), max: int64(inFlight + queue)}
}

// admit counts a request in, or fails with errShed when the limiter is
// full; leave counts it out.
func (l *limiter) admit() error {
	if l.admitted.Add(1) > l.max {
		l.admitted.Add(-1)
		return errShed
	}
	return nil
}

func (l *limiter) leave() { l.admitted.Add(-1) }

// acquire takes a slot for an admitted request, waiting at most wait; it
// gives up with ctx's error when the request ends first (the client left).
// release gives the slot back.
func (l *limiter) acquire(ctx context.Context, wait time.Duration) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errQueueTimed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

// inFlight and queued are the requests holding a slot, and the admitted
// ones that do not (decoding or waiting).
func (l *limiter) inFlight() int64 { return int64(len(l.slots)) }
func (l *limiter) queued() int64   { return max(l.admitted.Load()-l.inFlight(), 0) }
