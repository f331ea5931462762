package online

// memoryStage runs readMemory over a batch in a goroutine while the learner
// learns the same batch: the learner waits only for the records it reaches
// before the stage does. Progress is sent every memoryChunk records, so the
// learner blocks (rather than spins) when it catches up, and one core
// (GOMAXPROCS=1) still makes progress.
type memoryStage struct {
	progress chan int // records read so far; closed when the batch is done
	ready    int      // records the learner knows are read
}

const memoryChunk = 64

// startMemory reads the memory features of b's records from t's watermark
// on, in a goroutine. The trainer's lock is held until finish returns.
func (t *Trainer) startMemory(b *batch) *memoryStage {
	s := &memoryStage{progress: make(chan int, b.n/memoryChunk+1)}
	wm := t.watermark
	go func() {
		defer close(s.progress)
		for i := range b.recs[:b.n] {
			if p := &b.recs[i]; p.err == nil {
				t.mem.readMemory(&p.ex, &p.f, &wm)
			}
			if (i+1)%memoryChunk == 0 {
				s.progress <- i + 1
			}
		}
		s.progress <- b.n
	}()
	return s
}

// await returns once record i has been read.
func (s *memoryStage) await(i int) {
	for s.ready <= i {
		s.ready = <-s.progress
	}
}

// finish waits for the goroutine to end, however far the learner got.
func (s *memoryStage) finish() {
	for range s.progress {
	}
}
