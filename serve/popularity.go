package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// Popularity counts engagements per canvas from the events stream, so a
// replica has a popularity fallback before any model arrives.
type Popularity struct {
	mu     sync.Mutex
	counts map[string]map[string]float64 // canvas -> item -> engagements
}

// NewPopularity returns an empty counter.
func NewPopularity() *Popularity {
	return &Popularity{counts: map[string]map[string]float64{}}
}

// Observe counts one event if it is an engagement.
func (p *Popularity) Observe(canvas, action, item string) {
	if item == "" || action == "impression" || action == "dismiss" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range []string{canvas, ""} {
		m := p.counts[c]
		if m == nil {
			m = map[string]float64{}
			p.counts[c] = m
		}
		m[item]++
	}
}

// Top returns the k most engaged items of canvas (all canvases when it has
// none yet), excluding exclude.
func (p *Popularity) Top(canvas string, k int, exclude map[string]bool) []Item {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.counts[canvas]
	if len(m) == 0 {
		m = p.counts[""]
	}
	out := make([]Item, 0, len(m))
	for id, n := range m {
		if !exclude[id] {
			out = append(out, Item{ID: id, Score: n})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > k {
		out = out[:k]
	}
	return out
}

// FollowEvents counts engagements from the recent end of the events topic
// (the last tail records of each partition, then live) until ctx ends.
func (p *Popularity) FollowEvents(ctx context.Context, copts stream.ClientOptions, topic string, tail int64) error {
	cl, err := kgo.NewClient(append(copts.Opts(),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd().Relative(-tail)),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create events consumer: %w", err)
	}
	defer cl.Close()
	var ev struct {
		Canvas string `json:"canvas"`
		Action string `json:"action"`
		ItemID string `json:"item_id"`
	}
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			ev.Canvas, ev.Action, ev.ItemID = "", "", ""
			if json.Unmarshal(r.Value, &ev) == nil {
				p.Observe(ev.Canvas, ev.Action, ev.ItemID)
			}
		})
	}
	return nil
}
