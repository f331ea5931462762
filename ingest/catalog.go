package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// CatalogItem is the value of one record of the compacted catalog topic,
// keyed by the item id:
//
//	{"type":"video","title":"Space Galaxy Orbit","categories":["Documentary"],
//	 "countries":["US","FR"],"deleted":false}
//
// A tombstone or "deleted": true removes the item.
type CatalogItem struct {
	Type       string   `json:"type"`
	Title      string   `json:"title,omitempty"`
	Categories []string `json:"categories,omitempty"`
	Countries  []string `json:"countries,omitempty"`
	Deleted    bool     `json:"deleted,omitempty"`
}

// DecodeCatalogItem parses and checks one catalog record value: one JSON
// object with only the known fields and a type.
func DecodeCatalogItem(b []byte) (CatalogItem, error) {
	var it CatalogItem
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&it); err != nil {
		return it, fmt.Errorf("cannot decode catalog item: %w", err)
	}
	if dec.More() {
		return it, fmt.Errorf("cannot decode catalog item: data after the object")
	}
	if it.Type == "" && !it.Deleted {
		return it, fmt.Errorf("cannot decode catalog item: type is required (video, game, person, genre...)")
	}
	return it, nil
}

// Catalog is the item metadata of the catalog topic, kept current by
// Follow. It is safe for concurrent use; ingest attaches its metadata to
// examples whose event carries none, and a serving replica can follow the
// same topic. Events may reference items the catalog does not know (yet).
type Catalog struct {
	mu       sync.RWMutex
	items    map[string]CatalogItem
	rejected *metrics.Counter
	itemsG   *metrics.Gauge
}

// NewCatalog returns an empty catalog whose metrics (items, rejected
// records) go to set, if not nil.
func NewCatalog(set *metrics.Set) *Catalog {
	if set == nil {
		set = metrics.NewSet()
	}
	c := &Catalog{items: map[string]CatalogItem{}}
	c.rejected = set.GetOrCreateCounter("unirec_catalog_rejected_total")
	c.itemsG = set.GetOrCreateGauge("unirec_catalog_items", func() float64 { return float64(c.Len()) })
	return c
}

// Apply applies one catalog record: an item, a deletion or a tombstone.
func (c *Catalog) Apply(key, value []byte) error {
	if len(key) == 0 {
		c.rejected.Inc()
		return fmt.Errorf("cannot apply catalog record: no key (the item id)")
	}
	id := string(key)
	if value == nil {
		c.remove(id)
		return nil
	}
	it, err := DecodeCatalogItem(value)
	if err != nil {
		c.rejected.Inc()
		return fmt.Errorf("item %q: %w", id, err)
	}
	if it.Deleted {
		c.remove(id)
		return nil
	}
	c.mu.Lock()
	c.items[id] = it
	c.mu.Unlock()
	return nil
}

func (c *Catalog) remove(id string) {
	c.mu.Lock()
	delete(c.items, id)
	c.mu.Unlock()
}

// Item returns the catalog entry of an item.
func (c *Catalog) Item(id string) (CatalogItem, bool) {
	c.mu.RLock()
	it, ok := c.items[id]
	c.mu.RUnlock()
	return it, ok
}

// Lookup returns the metadata an example carries for an item.
func (c *Catalog) Lookup(id string) (stream.ItemMeta, bool) {
	it, ok := c.Item(id)
	if !ok {
		return stream.ItemMeta{}, false
	}
	return stream.ItemMeta{Type: it.Type, Title: it.Title, Categories: it.Categories}, true
}

// Len is the number of live items.
func (c *Catalog) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// Follow reads the catalog topic from its start (read committed) and
// applies every record until ctx ends. Bad records are logged, counted and
// skipped: the rest of the catalog stays usable.
func (c *Catalog) Follow(ctx context.Context, copts stream.ClientOptions, topic string, logf func(string, ...any)) error {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("cannot create catalog follower of %q: %w", topic, err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if err := c.Apply(r.Key, r.Value); err != nil && logf != nil {
				logf("catalog %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
		})
	}
	return nil
}
