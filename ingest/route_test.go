package ingest

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The partition ingest expects an event on is the one Kafka's default
// partitioner (murmur2, franz-go's StickyKeyPartitioner(nil), the Java
// client) gives its key: the contract for keyed producers.
func TestKeyPartitionIsKafkasDefault(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("unirec.events")
	for _, n := range []int32{1, 2, 3, 4, 7, 12} {
		for i := range 300 {
			key := fmt.Sprintf("req-%d-%s", i, string(make([]byte, i%5)))
			want := int32(tp.Partition(&kgo.Record{Key: []byte(key)}, int(n)))
			if got := keyPartition(key, n); got != want {
				t.Fatalf("key %q of %d partitions: %d, Kafka's partitioner %d", key, n, got, want)
			}
		}
	}
}

// The routing key is the request id, else the user id, else the event id.
func TestRoutingKey(t *testing.T) {
	f := func(e Event, want string) {
		t.Helper()
		if got := routingKey(&e); got != want {
			t.Errorf("routingKey(%+v) = %q, want %q", e, got, want)
		}
	}
	f(Event{EventID: "e", RequestID: "r", Context: map[string]string{"user_id": "u"}}, "r")
	f(Event{EventID: "e", Context: map[string]string{"user_id": "u"}}, "u")
	f(Event{EventID: "e"}, "e")
}
