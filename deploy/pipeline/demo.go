package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
)

// demoBackfill is how much event-time history the demo produces at once on
// an empty events topic, so the first model is trained on both positives
// and closed-window negatives within seconds of start-up.
const demoBackfill = 5 * time.Minute

// StartDemo produces synthetic events for every canvas at the config's
// demo.rate requests per second, with event times at the wall clock.
func StartDemo(p *Process) {
	p.Go("demo", func(ctx context.Context) error { return runDemo(ctx, p) })
}

func runDemo(ctx context.Context, p *Process) error {
	cfg := p.Config
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		return fmt.Errorf("cannot create demo producer: %w", err)
	}
	defer cl.Close()
	step := time.Duration(float64(time.Second) / cfg.Demo.Rate)
	start := time.Now()
	empty, err := TopicEmpty(ctx, cl, cfg.Topics.Events)
	if err != nil {
		return err
	}
	if empty {
		start = start.Add(-demoBackfill)
		p.Logf("demo: empty events topic, producing %s of history first", demoBackfill)
	}
	w := synth.NewWorld(synth.Options{Seed: cfg.Demo.Seed, Start: start, Step: step, IDPrefix: synth.RunIDPrefix("demo", time.Now())})
	for i := 0; ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * step)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		for _, ev := range w.Next() {
			b, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("cannot encode demo event: %w", err)
			}
			key := ev.RequestID // the contract: request id, else user id
			if key == "" {
				key = ev.Context["user_id"]
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(key), Value: b}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					p.Logf("demo: produce: %v", err)
				}
			})
		}
	}
	return nil
}

// TopicEmpty says whether topic holds no record at all. A topic that does
// not exist is empty; any other offset error is returned.
func TopicEmpty(ctx context.Context, cl *kgo.Client, topic string) (bool, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("cannot list end offsets of %q: %w", topic, err)
	}
	empty := true
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("cannot list end offset of %s partition %d: %w", topic, o.Partition, o.Err))
		case o.Offset > 0:
			empty = false
		}
	})
	return empty, errors.Join(errs...)
}
