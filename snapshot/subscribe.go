package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/stream"
)

// SubscriberOptions configures Subscribe.
type SubscriberOptions struct {
	Client  stream.ClientOptions
	Topic   string
	Metrics *metrics.Set
	Logf    func(format string, args ...any)
}

// assembly collects the chunks of one snapshot.
type assembly struct {
	version int64
	chunks  [][]byte
	have    int
}

// Subscribe reads the snapshots topic from its start and calls apply with
// every complete, verified snapshot, in order. While catching up on the
// backlog it decodes only the newest snapshot, so a cold replica starts on
// the latest model at once. Corrupt snapshots are logged, counted and
// skipped. It returns when ctx ends.
func Subscribe(ctx context.Context, opts SubscriberOptions, apply func(*Manifest, *online.Capture)) error {
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
	}
	rejected := opts.Metrics.GetOrCreateCounter("unirec_snapshot_rejected_total")
	cl, err := kgo.NewClient(append(opts.Client.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create snapshot consumer: %w", err)
	}
	defer cl.Close()
	backlogEnd := backlogEnd(ctx, cl, opts.Topic)
	var cur assembly
	var pending *Manifest
	var pendingPayload []byte
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			m, payload, err := cur.add(r)
			if err != nil {
				rejected.Inc()
				logf(opts.Logf, "snapshot: rejected record at offset %d: %v", r.Offset, err)
				return
			}
			if m != nil {
				pending, pendingPayload = m, payload
			}
		})
		if pending != nil && (fetchedTo(fetches) >= backlogEnd || ctx.Err() != nil) {
			c, err := decodePayload(pending, pendingPayload)
			if err != nil {
				rejected.Inc()
				logf(opts.Logf, "snapshot: rejected version %d: %v", pending.Version, err)
			} else {
				apply(pending, c)
			}
			pending, pendingPayload = nil, nil
		}
	}
	return nil
}

// add takes one record; when it completes a snapshot it returns its
// manifest and compressed payload.
func (a *assembly) add(r *kgo.Record) (*Manifest, []byte, error) {
	if string(r.Key) == manifestKey {
		var m Manifest
		if err := json.Unmarshal(r.Value, &m); err != nil {
			return nil, nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
		}
		if m.Version != a.version || a.have != m.Chunks || len(a.chunks) != m.Chunks {
			return nil, nil, fmt.Errorf("%w: manifest of version %d without its %d chunks", ErrCorrupt, m.Version, m.Chunks)
		}
		var payload []byte
		for _, c := range a.chunks {
			payload = append(payload, c...)
		}
		*a = assembly{}
		return &m, payload, nil
	}
	c, err := decodeChunk(r.Value)
	if err != nil {
		return nil, nil, err
	}
	if c.version != a.version || len(a.chunks) != c.total {
		*a = assembly{version: c.version, chunks: make([][]byte, c.total)}
	}
	if a.chunks[c.index] == nil {
		a.have++
	}
	a.chunks[c.index] = c.data
	return nil, nil, nil
}

// backlogEnd is the committed end offset of the topic at start.
func backlogEnd(ctx context.Context, cl *kgo.Client, topic string) int64 {
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		return 0
	}
	if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
		return o.Offset
	}
	return 0
}

// fetchedTo is one past the highest offset in fetches; a poll that returned
// no record means the reader is caught up.
func fetchedTo(f kgo.Fetches) int64 {
	to := int64(1 << 62)
	f.EachPartition(func(p kgo.FetchTopicPartition) {
		if n := len(p.Records); n > 0 {
			// the record after the last one is the transaction marker
			to = min(to, p.Records[n-1].Offset+2)
		}
	})
	return to
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
