package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/stream"
)

const topicsUsage = `Usage:
  unirec topics create [--config FILE] [--brokers host:port]   create the missing topics, then check them all
  unirec topics check  [--config FILE] [--brokers host:port]   check partitions, replicas and cleanup policies
`

// cmdTopics creates or checks the topics on --brokers.
func cmdTopics(ctx context.Context, args []string) error {
	sub, err := subcommand(args, topicsUsage, "create", "check")
	if err != nil {
		return err
	}
	f := newFlags("topics " + sub)
	cfg, err := f.load(args[1:])
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	specs := pipeline.TopicSpecs(cfg)
	if sub == "create" {
		if err := stream.EnsureTopics(ctx, cl, specs); err != nil {
			return err
		}
	}
	if err := stream.CheckTopics(ctx, cl, specs); err != nil {
		return err
	}
	for _, s := range specs {
		fmt.Printf("%-28s partitions>=%d replicas>=%d%s ok\n", s.Name, s.Partitions, s.Replicas, configText(s.Configs))
	}
	return nil
}

// configText is the topic configs a spec requires, " key=value" each in
// key order ("" for none), for topics check's lines.
func configText(c map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(&b, " %s=%s", k, c[k])
	}
	return b.String()
}
