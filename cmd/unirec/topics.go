package main

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// cmdTopics creates or checks the topics on --brokers.
func cmdTopics(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "check") {
		return fmt.Errorf("usage: unirec topics create|check [--config FILE] [--brokers host:port]")
	}
	f := newFlags("topics " + args[0])
	cfg, err := f.load(args[1:])
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	specs := topicSpecs(cfg)
	if args[0] == "create" {
		if err := stream.EnsureTopics(ctx, cl, specs); err != nil {
			return err
		}
	}
	if err := stream.CheckTopics(ctx, cl, specs); err != nil {
		return err
	}
	for _, s := range specs {
		fmt.Printf("%-28s partitions>=%d %v ok\n", s.Name, s.Partitions, s.Configs)
	}
	return nil
}
