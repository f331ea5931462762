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
// contexts, tasks and undecodable records.
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
	for i := range exs {
		recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &exs[i])})
		if i == 4 {
			recs = append(recs, &kgo.Record{Value: []byte{0xff}}) // undecodable, between two of one context
		}
	}
	feat, mem := model.Featurizer{}, model.DefaultMemoryConfig()
	var b batch
	dec := stream.NewExampleDecoder()
	for _, r := range recs {
		b.add(dec, feat, mem, r)
	}
	j := 0
	for i := range b.recs[:b.n] {
		p := &b.recs[i]
		if p.err != nil {
			continue
		}
		var want features
		want.featurize(feat, mem, &exs[j])
		if !slices.Equal(p.f.ctx, want.ctx) || !slices.Equal(p.f.item, want.item) || !slices.Equal(p.f.mem, want.mem) || p.f.user != want.user {
			t.Errorf("record %d (item %s): features %+v, featurized alone %+v", i, exs[j].ItemID, p.f, want)
		}
		j++
	}
	if j != len(exs) {
		t.Fatalf("%d records decoded, want %d", j, len(exs))
	}
}
