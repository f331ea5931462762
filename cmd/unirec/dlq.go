package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/unirec/unirec/stream"
)

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
		n, err := stream.InspectDeadLetters(ctx, cfg.Kafka, cfg.Topics.DeadLetters, *reason, w)
		if err == nil {
			fmt.Fprintf(os.Stderr, "%d dead letters\n", n)
		}
		return err
	}
	if *in == "" {
		return fmt.Errorf("dlq replay: --in FILE is required")
	}
	file, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("cannot open %q: %w", *in, err)
	}
	defer file.Close()
	n, err := stream.ReplayDeadLetters(ctx, cfg.Kafka, cfg.Topics.Events, file, *in)
	if err == nil {
		fmt.Fprintf(os.Stderr, "%d events re-injected into %s at %s\n", n, cfg.Topics.Events, time.Now().UTC().Format(time.RFC3339))
	}
	return err
}
