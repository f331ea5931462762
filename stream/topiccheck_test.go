package stream

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics created by EnsureTopics pass the check; a topic created by hand
// with the wrong cleanup policy or partition count fails it, with a message
// naming the topic and the fix.
func TestCheckTopics(t *testing.T) {
	cl := brokerClient(t)
	ctx := context.Background()
	good := DefaultTopics().Layout(3)
	if err := EnsureTopics(ctx, cl, good); err != nil {
		t.Fatal(err)
	}
	if err := CheckTopics(ctx, cl, good); err != nil {
		t.Fatalf("fresh topics fail the check: %v", err)
	}
	bad := []TopicSpec{{Name: "wrong-policy", Partitions: 1}, {Name: "too-many", Partitions: 4}}
	if err := EnsureTopics(ctx, cl, bad); err != nil {
		t.Fatal(err)
	}
	err := CheckTopics(ctx, cl, []TopicSpec{
		{Name: "wrong-policy", Partitions: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
		{Name: "too-many", Partitions: 1},
		{Name: "absent", Partitions: 1},
	})
	for _, want := range []string{`wrong-policy has cleanup.policy="delete", needs "compact"`, "too-many has 4 partitions, must have exactly 1", "absent:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to contain %q", err, want)
		}
	}
}

// Co-partitioned topics must have the same partition count; the error
// names each topic's count and the fix.
func TestCoPartitions(t *testing.T) {
	cl := brokerClient(t)
	ctx := context.Background()
	if err := EnsureTopics(ctx, cl, []TopicSpec{{Name: "a", Partitions: 3}, {Name: "b", Partitions: 3}, {Name: "c", Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	copts := Plaintext(cl.OptValue(kgo.SeedBrokers).([]string)...)
	if n, err := CoPartitions(ctx, copts, "a", "b"); n != 3 || err != nil {
		t.Errorf("a, b: %d %v, want 3", n, err)
	}
	_, err := CoPartitions(ctx, copts, "a", "c")
	if err == nil || !strings.Contains(err.Error(), "a has 3, c has 2") {
		t.Errorf("a, c: %v, want both counts", err)
	}
}

// Topics with fewer replicas than topics.replication_factor are refused
// (the embedded broker reports one replica per partition), and creating
// topics with more replicas than there are brokers fails at once.
func TestCheckTopicsRefusesTooFewReplicas(t *testing.T) {
	cl := brokerClient(t)
	ctx := context.Background()
	topics := DefaultTopics()
	if err := EnsureTopics(ctx, cl, topics.Layout(3)); err != nil {
		t.Fatal(err)
	}
	if err := CheckTopics(ctx, cl, topics.Layout(3)); err != nil {
		t.Fatalf("replication factor 1 on one broker fails the check: %v", err)
	}
	topics.ReplicationFactor = 3
	err := CheckTopics(ctx, cl, topics.Layout(3))
	want := "unirec.events has 3 of 3 partitions with only 1 replicas, topics.replication_factor needs 3"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want it to contain %q", err, want)
	}
	err = EnsureTopics(ctx, cl, []TopicSpec{{Name: "three-copies", Partitions: 1, Replicas: 3}})
	if err == nil || !strings.Contains(err.Error(), `cannot create topic "three-copies"`) {
		t.Errorf("creating 3 replicas on one broker: got %v", err)
	}
}

// brokerClient starts an embedded broker for the test and returns a client
// of it.
func brokerClient(t *testing.T) *kgo.Client {
	t.Helper()
	b, err := StartBroker(BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(Plaintext(b.Addr()).Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
