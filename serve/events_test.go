package serve

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// TestFollowsEventsAndCatalog: over an embedded broker, a replica learns
// popularity and each user's recent engagements from the events topic and
// country availability from the catalog topic, and its rules use them.
func TestFollowsEventsAndCatalog(t *testing.T) {
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(copts.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "ev", Partitions: 2}, {Name: "cat", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	r, clock := newTestReplica(t, ReplicaOptions{UseCases: []UseCase{{Name: "notifications",
		Environment: Environment{Rules: Rules{CountryAvailability: true, ExcludeRecent: time.Hour}}}}}, catalog(5))
	now := clock.Now().UTC().Format(time.RFC3339Nano)
	for _, rec := range []*kgo.Record{
		{Topic: "ev", Value: []byte(`{"event_id":"e1","time":"` + now + `","canvas":"notifications","action":"play","item_id":"m-4","context":{"user_id":"u-1"}}`)},
		{Topic: "ev", Value: []byte(`{"event_id":"e2","time":"` + now + `","canvas":"notifications","action":"click","item_id":"m-2","context":{"user_id":"u-2"}}`)},
		{Topic: "ev", Value: []byte(`not json`)},
		{Topic: "cat", Key: []byte("m-3"), Value: []byte(`{"type":"video","countries":["FR"]}`)},
		{Topic: "cat", Key: []byte("m-1"), Value: []byte(`{"type":"video","countries":["DE"]}`)},
		{Topic: "cat", Key: []byte("m-1"), Value: []byte(`{"type":"video","deleted":true}`)},
	} {
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	go r.FollowEvents(ctx, copts, "ev", 100)
	go r.FollowCatalog(ctx, copts, "cat")
	req := &Request{UseCase: "notifications", Context: map[string]string{"user_id": "u-1", "country": "US"}, K: 5}
	want := []string{"m-2", "m-1", "m-0"} // m-4 played by u-1, m-3 only in FR, m-1's restriction deleted
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got := ids(recommend(t, r, req).Items)
		if len(got) == len(want) && got[0] == want[0] && got[1] == want[1] && got[2] == want[2] && len(r.pop.Top("notifications", 5, nil)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %v, want %v; popularity %v", got, want, r.pop.Top("notifications", 5, nil))
		}
	}
}
