package online

// logStage runs, in a goroutine while the learner learns the same batch,
// the work that depends only on the examples in log order and never on
// what is learned: the memory's reads and counts (readMemory) and the item
// registry and popularity (register). The learner waits only for the
// records it reaches before the stage does. Progress is sent every
// logStageChunk records, so the learner blocks (rather than spins) when it
// catches up, and one core (GOMAXPROCS=1) still makes progress.
type logStage struct {
	progress chan int // records done so far; closed when the batch is done
	ready    int      // records the learner knows are done
}

const logStageChunk = 64

// startLogStage starts the log stage on b's records, from t's watermark,
// in a goroutine. The trainer's lock is held until finish returns.
func (t *Trainer) startLogStage(b *batch) *logStage {
	s := &logStage{progress: make(chan int, b.n/logStageChunk+1)}
	wm := t.watermark
	go func() {
		defer close(s.progress)
		for i := range b.recs[:b.n] {
			if p := &b.recs[i]; p.err == nil {
				t.mem.readMemory(&p.ex, &p.f, &wm)
				t.register(&p.ex)
			}
			if (i+1)%logStageChunk == 0 {
				s.progress <- i + 1
			}
		}
		s.progress <- b.n
	}()
	return s
}

// await returns once the stage is past record i.
func (s *logStage) await(i int) {
	for s.ready <= i {
		s.ready = <-s.progress
	}
}

// finish waits for the goroutine to end, however far the learner got.
func (s *logStage) finish() {
	for range s.progress {
	}
}
