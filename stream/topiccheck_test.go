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
	b, err := StartBroker(BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(ClientOptions{Brokers: []string{b.Addr()}}.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
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
	err = CheckTopics(ctx, cl, []TopicSpec{
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
