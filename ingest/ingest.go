package ingest

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// Options configures an Ingester.
type Options struct {
	Registry *Registry
	Topics   stream.Topics
	// Changelog is the compacted topic holding the join state; it has as many
	// partitions as the events topic.
	Changelog string
	// Client reaches the cluster, to restore state from the changelog.
	Client stream.ClientOptions
	// AllowedLateness is how far (in event time) behind the newest event of
	// its partition an event may arrive and still be joined; older ones are
	// dead-lettered as "late".
	AllowedLateness time.Duration
	// MaxEventBytes rejects larger events as "too_large".
	MaxEventBytes int
	// Now is the wall clock; windows of idle partitions close by it.
	Now     func() time.Time
	Metrics *metrics.Set
}

// Ingester is the ingest stage: events in, examples, dead letters and join
// changelog records out.
type Ingester struct {
	opts  Options
	parts map[int32]*partition
	acct  *accounting
	dec   *EventDecoder
	buf   []byte
	// lastClose is when idle windows were last swept, wall-clock ms.
	lastClose int64
}

// New returns an Ingester; opts must be valid.
func New(opts Options) *Ingester {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = 64 << 10
	}
	return &Ingester{opts: opts, parts: map[int32]*partition{}, acct: newAccounting(opts.Metrics, opts.Registry.Names()), dec: NewEventDecoder()}
}

// Restore rebuilds the join state of partitions from the changelog.
func (g *Ingester) Restore(ctx context.Context, partitions []int32) error {
	for _, p := range partitions {
		st := newPartition()
		err := stream.ReadPartition(ctx, g.opts.Client, g.opts.Changelog, p, func(r *kgo.Record) error {
			return st.apply(r.Key, r.Value, g.window)
		})
		if err != nil {
			return fmt.Errorf("cannot restore join state of partition %d: %w", p, err)
		}
		g.parts[p] = st
	}
	g.acct.setPending(g.pendingCount())
	return nil
}

// Revoke drops the state of partitions that moved to another process.
func (g *Ingester) Revoke(partitions []int32) {
	for _, p := range partitions {
		delete(g.parts, p)
	}
	g.acct.setPending(g.pendingCount())
}

// Commit publishes the accounting of the committed batch.
func (g *Ingester) Commit() {
	g.acct.commit()
	g.acct.setPending(g.pendingCount())
}

// Abort drops all state: the loop restores it from the changelog.
func (g *Ingester) Abort() []int32 {
	owned := make([]int32, 0, len(g.parts))
	for p := range g.parts {
		owned = append(owned, p)
	}
	g.parts = map[int32]*partition{}
	g.acct.rollback()
	return owned
}

// Process handles one batch of event records. Join state changes are
// written to the changelog once per batch: the last state of each changed
// pair, the watermark, and the batch's new event ids.
func (g *Ingester) Process(_ context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error {
	for _, r := range recs {
		st := g.parts[r.Partition]
		if st == nil {
			st = newPartition()
			g.parts[r.Partition] = st
		}
		if !st.open {
			st.open, st.firstOffset = true, r.Offset
		}
		before := st.watermark
		g.handle(st, r, emit)
		if st.watermark != before {
			st.wmDirty = true
			g.closeByWatermark(st, emit)
		}
	}
	now := g.opts.Now().UnixMilli()
	if len(recs) == 0 && now-g.lastClose >= 100 {
		g.lastClose = now
		for _, st := range g.parts {
			g.closeIdle(st, now, emit)
		}
	}
	for p, st := range g.parts {
		g.flush(p, st, emit)
	}
	return nil
}

// flush writes the open transaction's join state changes of a partition to
// its changelog partition.
func (g *Ingester) flush(part int32, st *partition, emit func(*kgo.Record)) {
	log := func(key string, value []byte) {
		emit(&kgo.Record{Topic: g.opts.Changelog, Partition: part, Key: []byte(key), Value: value})
	}
	for key, p := range st.dirty {
		if p == nil {
			log(key, nil)
			continue
		}
		log(key, encodePending(p))
		p.persisted = true
	}
	clear(st.dirty)
	if st.open {
		if v := st.seen.seal(dedupeKey(st.firstOffset)); v != nil {
			log(dedupeKey(st.firstOffset), v)
		}
		st.open = false
	}
	if st.wmDirty {
		for _, key := range st.seen.expire(st.watermark - g.opts.AllowedLateness.Milliseconds() - dedupeHorizon) {
			log(key, nil)
		}
		log(watermarkKey, binary.AppendVarint(nil, st.watermark))
		st.wmDirty = false
	}
}

// window returns the attribution window of a task in ms.
func (g *Ingester) window(task string) int64 {
	if c := g.opts.Registry.Canvas(task); c != nil {
		return c.AttributionWindow.Milliseconds()
	}
	return 0
}

// handle routes one event record to its outcome.
func (g *Ingester) handle(st *partition, r *kgo.Record, emit func(*kgo.Record)) {
	g.acct.consumed++
	e, rej := g.dec.Decode(r.Value, g.opts.MaxEventBytes)
	if rej == nil {
		rej = g.opts.Registry.Check(e)
	}
	if rej == nil && st.watermark-e.Time.UnixMilli() > g.opts.AllowedLateness.Milliseconds() {
		rej = reject(ReasonLate, "event time %s is %s behind the partition watermark, allowed lateness is %s",
			e.Time.Format(time.RFC3339Nano), time.Duration(st.watermark-e.Time.UnixMilli())*time.Millisecond, g.opts.AllowedLateness)
	}
	if rej != nil {
		g.acct.deadLetter(rej.Reason)
		emit(stream.DeadLetter(g.opts.Topics.DeadLetters, r, rej.Reason, rej.Detail))
		return
	}
	t := e.Time.UnixMilli()
	if !st.seen.add(e.EventID, t) {
		g.acct.outcome(outcomeDuplicate)
		return
	}
	if t > st.watermark {
		st.watermark = t
	}
	c := g.opts.Registry.Canvas(e.Canvas)
	ex := g.opts.Registry.Normalize(e)
	if e.Action == ActionImpression {
		g.impression(st, ex)
		return
	}
	g.engagement(st, c, ex, emit)
}

func (g *Ingester) impression(st *partition, ex stream.Example) {
	key := joinKey(ex.RequestID, ex.ItemID)
	if st.pending[key] != nil {
		g.acct.outcome(outcomeDuplicate)
		return
	}
	p := &pending{ex: ex, arrival: g.opts.Now().UnixMilli()}
	st.add(key, p, ex.EventTime+g.window(ex.Task))
	g.acct.pendingDelta++
	st.touch(key, p)
}

// engagement labels the pair of an engagement or dismiss: with the pending
// impression's context when there is one, on its own otherwise.
func (g *Ingester) engagement(st *partition, c *Canvas, ex stream.Example, emit func(*kgo.Record)) {
	act := c.Actions[ex.Action]
	w := float32(act.Weight)
	key := joinKey(ex.RequestID, ex.ItemID)
	p := st.pending[key]
	if p == nil || ex.RequestID == "" {
		g.emitExample(&ex, act.Positive, w*float32(c.Weight), 0, emit)
		return
	}
	out := p.ex
	out.EventID, out.Action, out.EventTime = ex.EventID, ex.Action, ex.EventTime
	if ex.Item.Type != "" || len(ex.Item.Categories) > 0 {
		out.Item = ex.Item
	}
	p.resolved = true
	switch {
	case !act.Positive:
		g.emitExample(&out, false, w*float32(c.Weight), 0, emit)
	case w > p.emitted:
		g.emitExample(&out, true, (w-p.emitted)*float32(c.Weight), 0, emit)
		p.emitted = w
	default:
		g.acct.outcome(outcomeJoined)
	}
	st.touch(key, p)
}

// closeByWatermark ends, in event-time order, the impressions whose
// attribution window closed before the watermark minus the allowed
// lateness: no engagement that is not late can still join them.
func (g *Ingester) closeByWatermark(st *partition, emit func(*kgo.Record)) {
	limit := st.watermark - g.opts.AllowedLateness.Milliseconds()
	for len(st.closes) > 0 && st.closes[0].at < limit {
		c := heap.Pop(&st.closes).(closing)
		if p := st.pending[c.key]; p != nil && p.closeAt == c.at {
			g.close(st, c.key, p, emit)
		}
	}
}

// closeIdle ends impressions of partitions whose watermark stopped: by wall
// clock, window plus allowed lateness after they arrived.
func (g *Ingester) closeIdle(st *partition, now int64, emit func(*kgo.Record)) {
	lateness := g.opts.AllowedLateness.Milliseconds()
	for key, p := range st.pending {
		if p.arrival+g.window(p.ex.Task)+lateness <= now {
			g.close(st, key, p, emit)
		}
	}
}

// close ends one pending impression: a negative example unless an
// engagement already labelled it, or stratification drops it.
func (g *Ingester) close(st *partition, key string, p *pending, emit func(*kgo.Record)) {
	st.remove(key, p)
	g.acct.pendingDelta--
	c := g.opts.Registry.Canvas(p.ex.Task)
	if c == nil { // restored state of a canvas removed from the config
		c = &Canvas{NegativeKeepRate: 1, Weight: 1}
	}
	switch {
	case p.resolved:
		g.acct.outcome(outcomeJoined)
	case c.NegativeKeepRate < 1 && keepFraction(p.ex.EventID) >= c.NegativeKeepRate:
		g.acct.outcome(outcomeSampledOut)
	default:
		rate := float32(0)
		if c.NegativeKeepRate < 1 {
			rate = float32(c.NegativeKeepRate)
		}
		g.emitExample(&p.ex, false, float32(c.Weight), rate, emit)
	}
}

func (g *Ingester) emitExample(ex *stream.Example, positive bool, weight, sampleProb float32, emit func(*kgo.Record)) {
	ex.Label, ex.Weight, ex.SampleProb = 0, weight, sampleProb
	if positive {
		ex.Label = 1
	}
	g.buf = stream.AppendExample(g.buf[:0], ex)
	emit(&kgo.Record{Topic: g.opts.Topics.Examples, Key: []byte(ex.Task), Value: append([]byte(nil), g.buf...)})
	g.acct.example(ex.Task, positive)
}

// keepFraction maps an event id to [0, 1) deterministically, so that
// stratified sampling gives the same answer on every replay.
func keepFraction(eventID string) float64 {
	h := fnv.New64a()
	h.Write([]byte(eventID))
	return float64(h.Sum64()>>11) / float64(1<<53)
}

func (g *Ingester) pendingCount() int {
	n := 0
	for _, st := range g.parts {
		n += len(st.pending)
	}
	return n
}
