package online

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// logStage does, beside the learner on the same batch, the work that
// depends only on the examples in log order and never on what is learned:
// the memory's reads and counts (readMemory) and the item registry and
// popularity (register). The work is cut into chunks of logStageChunk
// records, done in order, one at a time, by whoever claims the next one:
// the learner when it reaches a record whose chunk is not done yet, or the
// prepare goroutine while it would otherwise wait for the learner (help).
// Nobody ever waits for a goroutine the scheduler has not run: at worst
// the learner waits for the one chunk in progress.
type logStage struct {
	t    *Trainer
	recs []prepared
	wm   int64 // the stage's copy of the watermark (readMemory)

	mu   sync.Mutex   // held while a chunk is done
	next int          // first record of the next chunk; under mu
	done atomic.Int64 // records done; written under mu
}

const logStageChunk = 64

// startLogStage opens the log stage of b's records, from t's watermark,
// to helpers. The trainer's lock is held until finish returns.
func (t *Trainer) startLogStage(b *batch) *logStage {
	s := &logStage{t: t, recs: b.recs[:b.n], wm: t.watermark}
	t.stage.Store(s)
	return s
}

// stepLocked does the next chunk, if any is left; s.mu is held.
func (s *logStage) stepLocked() bool {
	if s.next == len(s.recs) {
		return false
	}
	end := min(s.next+logStageChunk, len(s.recs))
	for i := s.next; i < end; i++ {
		if p := &s.recs[i]; p.err == nil {
			s.t.mem.readMemory(&p.ex, &p.f, &s.wm)
			s.t.register(&p.ex)
		}
	}
	s.next = end
	s.done.Store(int64(end))
	return true
}

// tryStep does the next chunk unless another goroutine is on one; it
// reports whether chunks may be left.
func (s *logStage) tryStep() bool {
	if !s.mu.TryLock() {
		return true
	}
	defer s.mu.Unlock()
	return s.stepLocked()
}

// await returns once record i is done, doing chunks itself. It never
// blocks on the mutex: a goroutine woken from it would be queued behind
// the helper that woke it. While a helper is on a chunk (tens of
// microseconds) it spins, yielding now and then so that, on one core, a
// helper preempted mid-chunk can finish it.
func (s *logStage) await(i int) {
	for spins := 1; s.done.Load() <= int64(i); spins++ {
		s.tryStep()
		if spins%64 == 0 {
			runtime.Gosched()
		}
	}
}

// finish does whatever is left of the batch and closes the stage to
// helpers. A helper that loaded it finds nothing to claim and touches
// nothing else, so the batch can be reused at once.
func (s *logStage) finish() {
	s.await(len(s.recs) - 1)
	s.t.stage.CompareAndSwap(s, nil)
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
	return s != nil && s.done.Load() < int64(len(s.recs)) && s.tryStep()
}
