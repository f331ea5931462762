package throughput

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/unirec/unirec/bench"
)

// phase is one timed run over n records: the raw consumer, a floor or the
// stage itself.
type phase struct {
	Elapsed       time.Duration
	Rate          float64
	Timeline      []bench.Sample
	PeakHeap      uint64
	LogOrderShare float64 // the trainer's, with mini-batches
	MeanStep      float64 // examples per mini-batch step
}

// runPhase starts work in a goroutine and measures it until count reaches
// n: the time from the start, a timeline of the count and the peak heap
// every 20 ms, and a progress bar on progress. Then it stops work. work
// ending first (even without an error) is an error.
func runPhase(ctx context.Context, what string, n int, progress io.Writer, count func() int64, work func(context.Context) error) (phase, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	bar := bench.NewProgress(progress, what, n)
	start := time.Now()
	go func() { done <- work(ctx) }()
	p := phase{Timeline: []bench.Sample{{}}}
	poll, sample := time.NewTicker(time.Millisecond), time.NewTicker(20*time.Millisecond)
	defer poll.Stop()
	defer sample.Stop()
	for c := count(); c < int64(n); c = count() {
		select {
		case err := <-done:
			return p, fmt.Errorf("cannot finish %s: it ended after %d of %d records: %w", what, count(), n, errors.Join(err, ctx.Err()))
		case <-poll.C:
		case <-sample.C:
			p.Timeline = append(p.Timeline, bench.Sample{Seconds: time.Since(start).Seconds(), Count: int(c)})
			p.PeakHeap = max(p.PeakHeap, heapInuse())
			bar.Update(int(c))
		}
	}
	p.Elapsed = time.Since(start)
	p.Rate = float64(n) / p.Elapsed.Seconds()
	p.Timeline = append(p.Timeline, bench.Sample{Seconds: p.Elapsed.Seconds(), Count: n})
	p.PeakHeap = max(p.PeakHeap, heapInuse())
	bar.Done(n)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return p, fmt.Errorf("cannot stop %s: %w", what, err)
	}
	return p, nil
}
