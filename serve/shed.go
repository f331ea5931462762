package serve

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// limiter bounds the requests a replica works on at once. A request is
// admitted before its body is decoded: when as many requests as there are
// slots and queue places are already in, it is shed at once (HTTP 429)
// without decoding anything, instead of queueing into collapse. An
// admitted request takes a slot at once when one is free; otherwise it
// waits (counted in the queue) for at most half its latency budget (the
// rest is left to rank), and is
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

// LimitListener returns a listener that keeps at most n connections of ln
// open at once. A connection beyond them is counted (refused is called),
// answered with a 503 (Retry-After: 1) once its request starts to arrive,
// within a second, and closed; at most maxRefusing are being answered at
// once, the rest are closed at once, so a flood of idle or slow connections
// holds neither goroutines nor memory beyond n + maxRefusing.
func LimitListener(ln net.Listener, n int, refused func()) net.Listener {
	return &limitListener{Listener: ln, sem: make(chan struct{}, n), refusing: make(chan struct{}, maxRefusing), refused: refused}
}

type limitListener struct {
	net.Listener
	sem      chan struct{}
	refusing chan struct{} // connections being refused (maxRefusing)
	refused  func()
}

// refusal is the whole answer to a connection over the bound.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// maxRefusing bounds the connections being refused at once; beyond it a
// connection is closed without an answer.
const maxRefusing = 256

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			return &limitConn{Conn: c, release: sync.OnceFunc(func() { <-l.sem })}, nil
		default:
		}
		l.refuse(c)
	}
}

// refuse answers a connection over the bound with a 503 once its request
// has started to arrive (an answer written before it is one the client
// never asked for, and Go's client drops it as unsolicited), waiting at
// most a second, off the accept loop.
func (l *limitListener) refuse(c net.Conn) {
	if l.refused != nil {
		l.refused()
	}
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		var buf [4096]byte
		c.Read(buf[:])
		c.Write([]byte(refusal))
	}()
}

// limitConn gives its place back once, on its first Close.
type limitConn struct {
	net.Conn
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
