package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// FollowEvents feeds the popularity fallback and the per-user recent
// history from the recent end of the events topic (the last tail records
// of each partition, then live) until ctx ends. Undecodable events and
// events of canvases not configured are skipped: ingest dead-letters them
// (and raw events cannot add popularity canvases without bound).
func (r *Replica) FollowEvents(ctx context.Context, copts stream.ClientOptions, topic string, tail int64) error {
	return follow(ctx, copts, topic, kgo.NewOffset().AtEnd().Relative(-tail), func(rec *kgo.Record) {
		var ev struct {
			Canvas  string    `json:"canvas"`
			Action  string    `json:"action"`
			ItemID  string    `json:"item_id"`
			Time    time.Time `json:"time"`
			Context struct {
				UserID string `json:"user_id"`
			} `json:"context"`
		}
		if json.Unmarshal(rec.Value, &ev) != nil {
			return
		}
		if r.opts.Registry == nil || r.opts.Registry.Canvas(ev.Canvas) != nil {
			r.pop.Observe(ev.Canvas, ev.Action, ev.ItemID)
			r.recent.Observe(ev.Context.UserID, ev.Action, ev.ItemID, ev.Time)
		}
	})
}

// FollowCatalog keeps the country availability of items current from the
// compacted catalog topic (read from its start) until ctx ends.
func (r *Replica) FollowCatalog(ctx context.Context, copts stream.ClientOptions, topic string) error {
	return follow(ctx, copts, topic, kgo.NewOffset().AtStart(), func(rec *kgo.Record) {
		if err := r.avail.ApplyCatalogRecord(rec.Key, rec.Value); err != nil {
			r.logf("serve: skipping catalog record: %v", err)
		}
	})
}

// follow hands every record of topic from offset on to f until ctx ends.
func follow(ctx context.Context, copts stream.ClientOptions, topic string, from kgo.Offset, f func(*kgo.Record)) error {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(from))...)
	if err != nil {
		return fmt.Errorf("cannot create %s consumer: %w", topic, err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		fetches.EachRecord(f)
	}
	return nil
}
