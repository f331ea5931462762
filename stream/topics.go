package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics names every topic unirec reads or writes, and how many replicas
// each of their partitions has.
type Topics struct {
	Events string `yaml:"events"`
	// Repartition carries events that arrived on a partition of Events
	// other than the one their key hashes to (unkeyed, keyed by something
	// else, another partitioner), to that partition; ingest consumes it
	// with Events, co-partitioned. Same partition count as Events.
	Repartition string `yaml:"repartition"`
	Examples    string `yaml:"examples"`
	DeadLetters string `yaml:"dead_letters"`
	Snapshots   string `yaml:"snapshots"`
	Catalog     string `yaml:"catalog"`
	// ReplicationFactor is the replicas of every partition: topics are
	// created with it and the start-up check refuses fewer (1 suits the
	// embedded broker, 3 a production cluster).
	ReplicationFactor int16 `yaml:"replication_factor"`
}

// DefaultTopics returns the topic names documented in the README.
func DefaultTopics() Topics {
	return Topics{
		Events:      "unirec.events",
		Repartition: "unirec.events.repartition",
		Examples:    "unirec.examples",
		DeadLetters: "unirec.deadletters",
		Snapshots:   "unirec.snapshots",
		Catalog:     "unirec.catalog",

		ReplicationFactor: 1,
	}
}

// EnsureDefaults fills empty names with their defaults.
func (t *Topics) EnsureDefaults() {
	d := DefaultTopics()
	fill := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	fill(&t.Events, d.Events)
	fill(&t.Repartition, d.Repartition)
	fill(&t.Examples, d.Examples)
	fill(&t.DeadLetters, d.DeadLetters)
	fill(&t.Snapshots, d.Snapshots)
	fill(&t.Catalog, d.Catalog)
}

// TopicSpec is how one topic must be created.
type TopicSpec struct {
	Name       string
	Partitions int32
	// Replicas of every partition (0: the broker's default, not checked).
	Replicas int16
	Configs  map[string]string
}

// Layout returns the specs of all topics. The repartition topic has as many
// partitions as the events topic (ingest's co-partitioning). The examples and snapshots topics
// have one partition: the trainer's model is a deterministic function of the
// examples log order, and a snapshot chain must be read in order.
func (t Topics) Layout(eventPartitions int32) []TopicSpec {
	rf := t.ReplicationFactor
	return []TopicSpec{
		{Name: t.Events, Partitions: eventPartitions, Replicas: rf},
		{Name: t.Repartition, Partitions: eventPartitions, Replicas: rf},
		{Name: t.DeadLetters, Partitions: 1, Replicas: rf},
		{Name: t.Examples, Partitions: 1, Replicas: rf},
		{Name: t.Snapshots, Partitions: 1, Replicas: rf, Configs: map[string]string{"max.message.bytes": strconv.Itoa(MaxRecordBytes * 2)}},
		{Name: t.Catalog, Partitions: 1, Replicas: rf, Configs: map[string]string{"cleanup.policy": "compact"}},
	}
}

// MaxRecordBytes is the largest record value unirec writes; snapshots are
// chunked below it so that any Kafka cluster's default limits accept them.
const MaxRecordBytes = 512 << 10

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are.
func EnsureTopics(ctx context.Context, cl *kgo.Client, specs []TopicSpec) error {
	adm := kadm.NewClient(cl)
	for _, s := range specs {
		cfg := make(map[string]*string, len(s.Configs))
		for k, v := range s.Configs {
			cfg[k] = kadm.StringPtr(v)
		}
		rf := s.Replicas
		if rf == 0 {
			rf = -1 // the broker's default
		}
		resp, err := adm.CreateTopic(ctx, s.Partitions, rf, cfg, s.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("cannot create topic %q: %w", s.Name, err)
		}
	}
	return nil
}
