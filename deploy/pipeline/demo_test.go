package pipeline

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// TopicEmpty: a missing topic is empty, a produced one is not.
func TestTopicEmptyMissingTopic(t *testing.T) {
	br, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	cl, err := kgo.NewClient(stream.Plaintext(br.Addr()).Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if empty, err := TopicEmpty(ctx, cl, "missing"); !empty || err != nil {
		t.Errorf("missing topic: empty %v, err %v; want empty, no error", empty, err)
	}
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "used", Partitions: 2}}); err != nil {
		t.Fatal(err)
	}
	if empty, err := TopicEmpty(ctx, cl, "used"); !empty || err != nil {
		t.Errorf("new topic: empty %v, err %v; want empty", empty, err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "used", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if empty, err := TopicEmpty(ctx, cl, "used"); empty || err != nil {
		t.Errorf("used topic: empty %v, err %v; want not empty", empty, err)
	}
}
