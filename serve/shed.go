package serve

import (
	"errors"
	"sync/atomic"
	"time"
)

// limiter bounds the requests a replica works on at once. A request takes
// a slot at once when one is free; otherwise it may wait in a short queue
// for at most the wait it is given (half its latency budget, the rest left
// to rank). When the queue is full the request is shed at once (HTTP 429)
// instead of queueing into collapse, and when its wait runs out while
// queued it is answered by the fallback.
type limiter struct {
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
}

// Errors of limiter.acquire.
var (
	errShed       = errors.New("overloaded: queue full")
	errQueueTimed = errors.New("overloaded: no slot within the latency budget")
)

func newLimiter(inFlight, queue int) *limiter {
	return &limiter{slots: make(chan struct{}, inFlight), maxQueue: int64(queue)}
}

// acquire takes a slot, waiting at most wait; release gives it back.
func (l *limiter) acquire(wait time.Duration) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	if l.waiting.Add(1) > l.maxQueue {
		l.waiting.Add(-1)
		return errShed
	}
	defer l.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errQueueTimed
	}
}

func (l *limiter) release() { <-l.slots }
