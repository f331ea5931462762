package online

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unirec/unirec/stream"
)

// logStage does, beside the learner on the same batch, the work that
// depends only on the examples in log order and never on what is learned:
// the memory's reads and counts (one lane per memory lane: readLane), the
// item registry (registerItem) and popularity (countPopularity). Each of
// these stageLanes lanes touches state of its own, so the lanes go on
// independently, each in log order, cut into chunks of logStageChunk
// records done one at a time by whoever claims the lane's next one: the
// learner when it reaches a record whose chunks are not all done yet, the
// step's workers (step.go), or the prepare goroutine while it would
// otherwise wait for the learner or is ahead of it (help). Nobody ever waits for a
// goroutine the scheduler has not run: at worst the learner waits for
// the chunks in progress.
type logStage struct {
	t     *Trainer
	recs  []prepared
	lanes [stageLanes]stageLane
	turn  atomic.Uint32 // where helpers start looking for a lane with work
}

// stageLane is the progress of one lane of the stage.
type stageLane struct {
	mu   sync.Mutex   // held while a chunk is done
	next int          // first record of the next chunk; under mu
	wm   int64        // the lane's copy of the watermark (memory lanes); under mu
	done atomic.Int64 // records done; written under mu
	_    [64]byte     // lanes are written by different cores
}

const (
	logStageChunk = 64
	laneItems     = memLanes     // the stage lane of the item registry
	lanePop       = memLanes + 1 // and of popularity
	stageLanes    = memLanes + 2
)

// startLogStage opens the log stage of recs (a batch's, or with max_rows
// a step's), from t's watermark, to helpers. The trainer's lock is held
// until finish returns.
func (t *Trainer) startLogStage(recs []prepared) *logStage {
	s := &logStage{t: t, recs: recs}
	for l := range s.lanes {
		s.lanes[l].wm = t.watermark
	}
	t.stage.Store(s)
	return s
}

// stepLocked does lane l's next chunk, if any is left; its mu is held.
func (s *logStage) stepLocked(l int) bool {
	ln := &s.lanes[l]
	if ln.next == len(s.recs) {
		return false
	}
	end := min(ln.next+logStageChunk, len(s.recs))
	for i := ln.next; i < end; i++ {
		p := &s.recs[i]
		if p.err != nil {
			continue
		}
		switch l {
		case laneItems:
			s.t.registerItem(&p.ex)
		case lanePop:
			s.t.countPopularity(&p.ex)
		default:
			if len(p.f.mem) > 0 {
				s.t.mem[l].readLane(l, &p.ex, &p.f, ln.wm)
			}
			ln.wm = max(ln.wm, p.ex.EventTime)
		}
	}
	ln.next = end
	ln.done.Store(int64(end))
	return true
}

// tryLane does lane l's next chunk unless another goroutine is on one; it
// reports whether it did one.
func (s *logStage) tryLane(l int) bool {
	ln := &s.lanes[l]
	if !ln.mu.TryLock() {
		return false
	}
	defer ln.mu.Unlock()
	return s.stepLocked(l)
}

// tryStep does one chunk of some lane with work left that no other
// goroutine is on; it reports whether chunks may be left. When other
// goroutines are on all of them it yields first: on one core, to them.
func (s *logStage) tryStep() bool {
	left := false
	start := int(s.turn.Add(1))
	for k := range stageLanes {
		l := (start + k) % stageLanes
		if s.lanes[l].done.Load() == int64(len(s.recs)) {
			continue
		}
		left = true
		if s.tryLane(l) {
			return true
		}
	}
	if left {
		runtime.Gosched()
	}
	return left
}

// await returns once record i is done in every lane, doing chunks itself.
// It never blocks on a mutex: a goroutine woken from it would be queued
// behind the helper that woke it. While helpers are on the chunks it
// needs (tens of microseconds) it spins, yielding now and then so that,
// on one core, a helper preempted mid-chunk can finish it.
func (s *logStage) await(i int) {
	for l := range s.lanes {
		s.awaitLane(l, i)
	}
}

// awaitLane returns once lane l has done record i, doing its chunks.
func (s *logStage) awaitLane(l, i int) {
	ln := &s.lanes[l]
	for spins := 1; ln.done.Load() <= int64(i); spins++ {
		if !s.tryLane(l) && spins%64 == 0 {
			runtime.Gosched()
		}
	}
}

// awaitTimed is awaitLane, timed.
func (s *logStage) awaitTimed(l, i int) time.Duration {
	start := time.Now()
	s.awaitLane(l, i)
	return time.Since(start)
}

// finish does whatever is left of the batch and closes the stage to
// helpers. A helper that loaded it finds nothing to claim and touches
// nothing else, so the batch can be reused at once.
func (s *logStage) finish() {
	s.await(len(s.recs) - 1)
	s.t.stage.CompareAndSwap(s, nil)
}

// logInline does the log stage's work on ex itself, in the learner's log
// order: the memory at the watermark before ex, the item registry and
// popularity (with max_rows, where a commit may fall between any two
// records).
func (t *Trainer) logInline(ex *stream.Example, f *features) {
	t.mem.readMemory(ex, f, t.watermark)
	t.register(ex)
}

// helpWhile does chunks of the current log stage while blocked says the
// caller (prepare) would block on the learner and chunks are left.
func (t *Trainer) helpWhile(blocked func() bool) {
	for blocked() && t.helpLogStage() {
	}
}

// helpLogStage does one chunk of the current log stage, if there is one
// with work left; it reports whether chunks may be left.
func (t *Trainer) helpLogStage() bool {
	s := t.stage.Load()
	return s != nil && s.tryStep()
}
