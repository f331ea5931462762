package ingest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
)

// The dedupe set of a partition holds at most MaxDedupeIDs ids: beyond
// them its oldest segments are forgotten before their hour (tombstoned in
// the changelog and counted), so a flood of unique ids cannot grow it
// without bound; the recent ids still catch their duplicates.
func TestDedupeSetIsBounded(t *testing.T) {
	s := newStage(t, nil, func(o *ingest.Options) { o.MaxDedupeIDs = 3 })
	play := func(id string) string {
		return event(id, t0, "notifications", "play", "", "m-1", `"user_id":"u1"`)
	}
	first := s.offset + 1
	s.batch(int32(0), play("a"), int32(0), play("b"))
	out := s.batch(int32(0), play("c"), int32(0), play("d")) // 4 ids: a and b go
	tombstone := fmt.Sprintf("d%016x", first)
	found := false
	for _, r := range out {
		found = found || (r.Topic == "changelog" && string(r.Key) == tombstone && r.Value == nil)
	}
	if !found {
		t.Errorf("the oldest segment %s was not tombstoned", tombstone)
	}
	out = s.batch(int32(0), play("a"), int32(0), play("d"))
	if n := metricValue(s.set, "unirec_ingest_dedupe_ids_forgotten_total"); n != 2 {
		t.Errorf("%v ids forgotten, want 2 (a and b)", n)
	}
	if _, ok := out.examples(t, s.topics)["a"]; !ok {
		t.Errorf("a forgotten id (a) is judged afresh: want its example")
	}
	if n := metricValue(s.set, `unirec_ingest_events_total{outcome="duplicate"}`); n != 1 {
		t.Errorf("%v duplicates, want 1 (d, still remembered)", n)
	}
}

// A negative-sampling pool holds at most MaxPoolItems items per canvas: an
// item first engaged with once it is full is not added (counted), and is
// never drawn; the items in it keep counting.
func TestNegativePoolIsBounded(t *testing.T) {
	s := newStage(t, nil, engagementOnly(t, 3, ingest.SamplerUniform), func(o *ingest.Options) { o.MaxPoolItems = 2 })
	var evs []any
	for i, it := range []string{"m-1", "m-2", "m-3", "m-4", "m-1", "m-2", "m-5", "m-1"} {
		evs = append(evs, int32(0), event(fmt.Sprint("r", i), t0.Add(time.Duration(i)*time.Second), "ratings", "play", "", it, `"user_id":"u1"`))
	}
	out := s.batch(evs...)
	for _, r := range out {
		if r.Topic == "changelog" && len(r.Key) > 0 && r.Key[0] == 'c' && string(r.Key) != "cratings\x00m-1" && string(r.Key) != "cratings\x00m-2" {
			t.Errorf("pool count of %q written beyond the bound", r.Key)
		}
	}
	if n := metricValue(s.set, "unirec_ingest_pool_items_dropped_total"); n != 3 {
		t.Errorf("%v items dropped, want 3 (m-3, m-4, m-5)", n)
	}
}
