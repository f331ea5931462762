package stream

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// CheckTopics verifies that existing topics match their specs: at least
// the spec's partitions (exactly one where the spec says one: the examples
// and snapshots topics are ordered logs), at least the spec's replicas on
// every partition, and every config the spec sets
// that decides correctness (cleanup.policy). The error lists every
// mismatch with the fix.
func CheckTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec) error {
	adm := kadm.NewClient(cl)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot describe topics: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return fmt.Errorf("cannot describe topic configs: %w", err)
	}
	var problems []string
	for _, s := range specs {
		problems = append(problems, checkTopic(s, details[s.Name], configs)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("topics do not match what unirec needs:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func checkTopic(s TopicSpec, d kadm.TopicDetail, configs kadm.ResourceConfigs) []string {
	if d.Err != nil {
		return []string{fmt.Sprintf("%s: %v (create it with `unirec topics create`)", s.Name, d.Err)}
	}
	var out []string
	n := int32(len(d.Partitions))
	switch {
	case s.Partitions == 1 && n != 1:
		out = append(out, fmt.Sprintf("%s has %d partitions, must have exactly 1 (its order matters)", s.Name, n))
	case n < s.Partitions:
		out = append(out, fmt.Sprintf("%s has %d partitions, needs at least %d (add partitions)", s.Name, n, s.Partitions))
	}
	out = append(out, checkReplicas(s, d)...)
	rc, err := configs.On(s.Name, nil)
	if err != nil {
		return append(out, fmt.Sprintf("%s: cannot read its configs: %v", s.Name, err))
	}
	for k, want := range s.Configs {
		if k != "cleanup.policy" {
			continue // sizes and retention are set at creation; operators may tune them
		}
		got := ""
		for _, c := range rc.Configs {
			if c.Key == k && c.Value != nil {
				got = *c.Value
			}
		}
		if got != want {
			out = append(out, fmt.Sprintf("%s has %s=%q, needs %q (alter the topic config)", s.Name, k, got, want))
		}
	}
	return out
}

// checkReplicas names the partitions of d with fewer replicas than s asks
// for (one line for the topic: the fewest replicas found).
func checkReplicas(s TopicSpec, d kadm.TopicDetail) []string {
	fewest, short := int(s.Replicas), 0
	for _, p := range d.Partitions {
		if len(p.Replicas) < int(s.Replicas) {
			fewest, short = min(fewest, len(p.Replicas)), short+1
		}
	}
	if short == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s has %d of %d partitions with only %d replicas, topics.replication_factor needs %d "+
		"(reassign its partitions to more brokers, or lower topics.replication_factor)", s.Name, short, len(d.Partitions), fewest, s.Replicas)}
}

// CoPartitions returns the partition count that topics share, or an error
// listing their counts when they differ: co-partitioned topics (events,
// repartition, changelog) must have the same number, or a key's state
// would be looked for in two places.
func CoPartitions(ctx context.Context, copts ClientOptions, topics ...string) (int32, error) {
	cl, err := kgo.NewClient(copts.Opts()...)
	if err != nil {
		return 0, fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("cannot describe topics: %w", err)
	}
	var n int32
	counts := make([]string, len(topics))
	same := true
	for i, t := range topics {
		d := details[t]
		if d.Err != nil {
			return 0, fmt.Errorf("cannot describe topic %q: %w (create it with `unirec topics create`)", t, d.Err)
		}
		c := int32(len(d.Partitions))
		counts[i] = fmt.Sprintf("%s has %d", t, c)
		if i == 0 {
			n = c
		}
		same = same && c == n
	}
	if !same || n == 0 {
		return 0, fmt.Errorf("topics must have the same number of partitions: %s (add partitions to the smaller ones)", strings.Join(counts, ", "))
	}
	return n, nil
}
