package bench_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/unirec/unirec/bench/throughput"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
)

// benchExamples is how many examples the throughput benchmark trains on;
// UNIREC_BENCH_EXAMPLES overrides it.
func benchExamples(b *testing.B) int {
	if s := os.Getenv("UNIREC_BENCH_EXAMPLES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			b.Fatalf("UNIREC_BENCH_EXAMPLES=%q is not a positive integer", s)
		}
		return n
	}
	return 300_000
}

// BenchmarkTrainerThroughput measures the end-to-end trainer (decode,
// featurize, score, update, Pebble commit) from a one-partition examples
// topic on the embedded broker, against the raw franz-go consume rate of the
// same topic and decoding plus featurizing without learning (the floor),
// measured in the same run (bench/throughput); then the same with
// per-coordinate AdaGrad and with a memory bound of 1000 rows (the model has
// about 1,700). Run it with -benchtime 1x.
func BenchmarkTrainerThroughput(b *testing.B) {
	opts := throughput.TrainerOptions{Examples: benchExamples(b),
		Trainer: online.TrainerOptions{Model: model.DefaultModelConfig(), CommitInterval: time.Second, MinCount: 1},
		Variants: []throughput.Variant{
			{Name: "coordinate", Apply: func(o *online.TrainerOptions) { o.Model.Optimizer = model.OptimizerCoordinate }},
			{Name: "max_rows_1000", Apply: func(o *online.TrainerOptions) { o.MaxRows = 1000 }},
		}}
	for b.Loop() {
		r, err := throughput.Trainer(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		reportResult(b, r)
	}
}
