package online

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// TestBatchFeaturesMatchFeaturizingEachExample: the first stage featurizes
// the context of consecutive examples of one request once; every record
// must still get exactly the features, memory keys and user it would get
// on its own, across hour boundaries (before the epoch too), changed
// contexts, tasks and undecodable records, and whichever worker decodes
// which chunk of the batch.
func TestBatchFeaturesMatchFeaturizingEachExample(t *testing.T) {
	search := []stream.Field{{Name: "user_id", Value: "u1"}, {Name: "query", Value: "Blue Shoes"}}
	related := []stream.Field{{Name: "user_id", Value: "u1"}, {Name: "source_item_id", Value: "i9"}}
	hour := time.Hour.Milliseconds()
	exs := []stream.Example{
		{Task: "search", ItemID: "a", EventTime: 5*hour - 1, Context: search},
		{Task: "search", ItemID: "b", EventTime: 5*hour - 1, Context: search},
		{Task: "search", ItemID: "c", EventTime: 5 * hour, Context: search},             // next hour
		{Task: "related_items", ItemID: "c", EventTime: 5 * hour, Context: search},      // other task
		{Task: "related_items", ItemID: "d", EventTime: 5 * hour, Context: related},     // other context
		{Task: "related_items", ItemID: "e", EventTime: 5 * hour, Context: related[:1]}, // fewer fields
		{Task: "search", ItemID: "f", EventTime: -1, Context: search},                   // 23:00 of the day before the epoch
		{Task: "search", ItemID: "g", EventTime: 1, Context: search},                    // 00:00 on the epoch
		{Task: "search", ItemID: "h", EventTime: 1, Context: search},
	}
	var recs []*kgo.Record
	var want []*stream.Example // per record, nil when undecodable
	for range 100 {            // several chunks, cut inside requests
		for i := range exs {
			recs, want = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &exs[i])}), append(want, &exs[i])
			if i == 4 {
				recs, want = append(recs, &kgo.Record{Value: []byte{0xff}}), append(want, nil) // undecodable, between two of one context
			}
		}
	}
	feat, mem := model.Featurizer{}, model.DefaultMemoryConfig()
	for _, workers := range []int{1, 3} {
		var b batch
		decs := make([]*stream.ExampleDecoder, workers)
		for i := range decs {
			decs[i] = stream.NewExampleDecoder()
		}
		for _, r := range recs {
			b.add(r)
		}
		b.decode(decs, feat, mem, func() {})
		for i := range b.recs[:b.n] {
			p := &b.recs[i]
			if (p.err == nil) != (want[i] != nil) {
				t.Fatalf("%d workers, record %d: error %v", workers, i, p.err)
			}
			if p.err != nil {
				continue
			}
			var alone features
			alone.featurize(feat, mem, want[i])
			if !slices.Equal(p.f.ctx, alone.ctx) || !slices.Equal(p.f.item, alone.item) || !slices.Equal(p.f.mem, alone.mem) || p.f.user != alone.user {
				t.Fatalf("%d workers, record %d (item %s): features %+v, featurized alone %+v", workers, i, want[i].ItemID, p.f, alone)
			}
		}
	}
}
