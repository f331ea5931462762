package throughput

import (
	"context"
	"fmt"
)

// Default sizes of each stage's run.
const (
	DefaultEvents   = 400_000
	DefaultExamples = 300_000
)

// Stages runs the stages asked for ("ingest", "trainer" or "all"), ingest
// first, each with n records (0: its default size), and returns their
// results.
func Stages(ctx context.Context, stage string, n int, in IngestOptions, tr TrainerOptions) ([]*Result, error) {
	if stage != "ingest" && stage != "trainer" && stage != "all" || n < 0 {
		return nil, fmt.Errorf("--stage must be ingest, trainer or all (got %q) and --events not negative (got %d)", stage, n)
	}
	size := func(def int) int {
		if n > 0 {
			return n
		}
		return def
	}
	var out []*Result
	if stage == "ingest" || stage == "all" {
		in.Events = size(DefaultEvents)
		r, err := Ingest(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("cannot measure ingest throughput: %w", err)
		}
		out = append(out, r)
	}
	if stage == "trainer" || stage == "all" {
		tr.Examples = size(DefaultExamples)
		r, err := Trainer(ctx, tr)
		if err != nil {
			return nil, fmt.Errorf("cannot measure trainer throughput: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
