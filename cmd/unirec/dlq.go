package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/stream"
)

// deadLetter is one dead letter as `unirec dlq inspect` writes it: one JSON
// object per line; `unirec dlq replay` reads the same lines back, so an
// operator can fix the event in place and re-inject it.
type deadLetter struct {
	Source string          `json:"source"`
	Reason string          `json:"reason"`
	Detail string          `json:"detail"`
	Key    string          `json:"key,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"` // the original bytes when they are JSON
	Raw    string          `json:"raw,omitempty"`   // the original bytes otherwise
}

const dlqUsage = `Usage:
  unirec dlq inspect [--reason R] [--out FILE]   dead letters as JSON lines (stdout by default)
  unirec dlq replay  --in FILE                   produce the (fixed) events of those lines to the events topic
`

func cmdDLQ(ctx context.Context, args []string) error {
	sub, err := subcommand(args, dlqUsage, "inspect", "replay")
	if err != nil {
		return err
	}
	f := newFlags("dlq " + sub)
	reason := f.fs.String("reason", "", "only dead letters with this reason")
	out := f.fs.String("out", "", "write to this file instead of stdout")
	in := f.fs.String("in", "", "JSON-lines file of dead letters to re-inject")
	cfg, err := f.load(args[1:])
	if err != nil {
		return err
	}
	if sub == "inspect" {
		w := io.Writer(os.Stdout)
		if *out != "" {
			file, err := os.Create(*out)
			if err != nil {
				return fmt.Errorf("cannot create %q: %w", *out, err)
			}
			defer file.Close()
			w = file
		}
		return inspectDLQ(ctx, cfg, *reason, w)
	}
	if *in == "" {
		return fmt.Errorf("dlq replay: --in FILE is required")
	}
	return replayDLQ(ctx, cfg, *in)
}

// inspectDLQ writes every dead letter (up to the end at the time of the
// call) as a JSON line.
func inspectDLQ(ctx context.Context, cfg pipeline.Config, reason string, w io.Writer) error {
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	parts, err := kadm.NewClient(cl).ListEndOffsets(ctx, cfg.Topics.DeadLetters)
	if err != nil {
		return fmt.Errorf("cannot list dead-letter partitions: %w", err)
	}
	enc := json.NewEncoder(w)
	n := 0
	var perr error
	parts.Each(func(o kadm.ListedOffset) {
		if perr != nil || o.Err != nil {
			return
		}
		perr = stream.ReadPartition(ctx, cfg.Kafka, cfg.Topics.DeadLetters, o.Partition, func(r *kgo.Record) error {
			dl := deadLetter{Source: stream.Header(r, stream.HeaderSource), Reason: stream.Header(r, stream.HeaderReason),
				Detail: stream.Header(r, stream.HeaderDetail), Key: string(r.Key)}
			if reason != "" && dl.Reason != reason {
				return nil
			}
			if json.Valid(r.Value) {
				dl.Event = r.Value
			} else {
				dl.Raw = string(r.Value)
			}
			n++
			return enc.Encode(dl)
		})
	})
	if perr != nil {
		return fmt.Errorf("cannot read dead letters: %w", perr)
	}
	fmt.Fprintf(os.Stderr, "%d dead letters\n", n)
	return nil
}

// replayDLQ produces the event of every line of path to the events topic.
func replayDLQ(ctx context.Context, cfg pipeline.Config, path string) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", path, err)
	}
	defer file.Close()
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		var dl deadLetter
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			return fmt.Errorf("%s:%d: not a dead-letter line: %w", path, line, err)
		}
		value := []byte(dl.Event)
		if len(value) == 0 {
			value = []byte(dl.Raw)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(dl.Key), Value: value}).FirstErr(); err != nil {
			return fmt.Errorf("%s:%d: cannot produce: %w", path, line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("cannot read %q: %w", path, err)
	}
	fmt.Fprintf(os.Stderr, "%d events re-injected into %s at %s\n", n, cfg.Topics.Events, time.Now().UTC().Format(time.RFC3339))
	return nil
}
