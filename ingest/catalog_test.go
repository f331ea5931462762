package ingest_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// Ingest follows the compacted catalog topic: an example whose event has no
// item metadata gets the catalog's; metadata in the event wins; items the
// catalog does not know, or that it deleted, stay without metadata. Bad
// catalog records are counted and skipped.
func TestCatalogAttachesItemMetadata(t *testing.T) {
	var cat *ingest.Catalog
	p := startIngest(t, func(o *ingest.Options) {
		cat = ingest.NewCatalog(o.Metrics)
		o.Catalog = cat
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cat.Follow(ctx, p.client, p.topics.Catalog, t.Logf) }()
	t.Cleanup(func() { cancel(); <-done })
	put := func(id, value string) {
		t.Helper()
		r := &kgo.Record{Topic: p.topics.Catalog, Key: []byte(id)}
		if value != "" {
			r.Value = []byte(value)
		}
		if err := p.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	put("m-1", `{"type":"video","title":"Space Galaxy Orbit","categories":["Documentary"],"countries":["US","FR"]}`)
	put("m-2", `{"type":"game","title":"Pixel Dragon"}`)
	put("m-2", `{"type":"game","deleted":true}`)
	put("m-3", `{"type":"person","title":"A. Actor"}`)
	put("m-3", "") // tombstone
	put("m-4", `{"title":"no type"}`)
	put("m-5", `{"type":"genre","title":"Horror","colour":"red"}`)
	streamtest.WaitFor(t, 30*time.Second, "the catalog to apply its records", func() bool {
		return metricValue(p.set, "unirec_catalog_rejected_total") == 2 // m-4 and m-5, the last records
	})
	if n := metricValue(p.set, "unirec_catalog_items"); n != 1 {
		t.Errorf("catalog holds %v items, want 1 (m-1)", n)
	}
	if it, ok := cat.Item("m-1"); !ok || !reflect.DeepEqual(it.Countries, []string{"US", "FR"}) {
		t.Fatalf("catalog item m-1: %+v", it)
	}
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	withMeta := `{"event_id":"e5","time":"2026-11-27T10:00:00Z","canvas":"notifications","action":"click","item_id":"m-1","context":{"user_id":"u"},"item":{"type":"video","title":"Own Title"}}`
	p.produce(t, "k",
		event("e1", t0, "notifications", "click", "", "m-1", `"user_id":"u"`),
		event("e2", t0, "notifications", "click", "", "m-2", `"user_id":"u"`),
		event("e3", t0, "notifications", "click", "", "m-3", `"user_id":"u"`),
		event("e4", t0, "notifications", "click", "", "m-unknown", `"user_id":"u"`),
		withMeta)
	want := map[string]stream.ItemMeta{
		"e1": {Type: "video", Title: "Space Galaxy Orbit", Categories: []string{"Documentary"}},
		"e2": {}, "e3": {}, "e4": {},
		"e5": {Type: "video", Title: "Own Title"},
	}
	for _, r := range p.readCommitted(t, p.topics.Examples, len(want)) {
		var ex stream.Example
		if err := stream.DecodeExample(r.Value, &ex); err != nil {
			t.Fatal(err)
		}
		w := want[ex.EventID]
		if ex.Item.Type != w.Type || ex.Item.Title != w.Title || len(ex.Item.Categories) != len(w.Categories) {
			t.Errorf("%s: item %+v, want %+v", ex.EventID, ex.Item, w)
		}
	}
}

// FuzzDecodeCatalogItem: no input panics; an accepted item encodes and
// decodes to itself.
func FuzzDecodeCatalogItem(f *testing.F) {
	f.Add([]byte(`{"type":"video","title":"T","categories":["a"],"countries":["US"]}`))
	f.Add([]byte(`{"type":"game","deleted":true}`))
	f.Add([]byte(`{"title":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := ingest.DecodeCatalogItem(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ingest.DecodeCatalogItem(again)
		if err != nil || !reflect.DeepEqual(normCatalog(back), normCatalog(it)) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", b, back, err, it)
		}
	})
}

func normCatalog(it ingest.CatalogItem) ingest.CatalogItem {
	if len(it.Categories) == 0 {
		it.Categories = nil
	}
	if len(it.Countries) == 0 {
		it.Countries = nil
	}
	return it
}
