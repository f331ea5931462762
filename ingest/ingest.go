package ingest

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
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
	// Partitions is the partition count of the events topic (and of
	// Topics.Repartition and the changelog). When set, an events record
	// whose partition is not the one Kafka's default partitioner gives its
	// routing key (request_id, else context.user_id, else event_id) is
	// produced to that partition of Topics.Repartition, counted as
	// "repartitioned", and handled when read back from there (never routed
	// again). The loop must consume both topics co-partitioned
	// (stream.TxLoopOptions.CoTopics). 0 handles every event where it is
	// (tests that place events on partitions by hand).
	Partitions int32
	// Client reaches the cluster, to restore state from the changelog.
	Client stream.ClientOptions
	// AllowedLateness is how far (in event time) behind the newest event of
	// its partition an event may arrive and still be joined; older ones are
	// dead-lettered as "late".
	AllowedLateness time.Duration
	// MaxFutureSkew bounds event time by the wall clock (Now): events later
	// than now plus this are dead-lettered as "future", so no watermark
	// ever passes now plus this. A restored watermark beyond it is
	// clamped. 0 means DefaultMaxFutureSkew.
	MaxFutureSkew time.Duration
	// MaxDedupeIDs bounds the event ids a partition remembers (8 bytes
	// each, plus the map's overhead); beyond it the oldest segments are
	// forgotten before their hour, counted. 0 means DefaultMaxDedupeIDs.
	MaxDedupeIDs int
	// MaxPoolItems bounds the items of a canvas' negative-sampling pool in
	// a partition; new items beyond it are not added, counted. 0 means
	// DefaultMaxPoolItems.
	MaxPoolItems int
	// MaxEventBytes rejects larger events as "too_large".
	MaxEventBytes int
	// Catalog, when set, gives item metadata to examples whose event has
	// none.
	Catalog *Catalog
	// Now is the wall clock; windows of idle partitions close by it.
	Now     func() time.Time
	Logf    func(format string, args ...any)
	Metrics *metrics.Set
}

// Ingester is the ingest stage: events in, examples, dead letters and join
// changelog records out. The partitions of a batch are processed in
// parallel, each by one goroutine that owns its state; their outputs are
// emitted in partition order.
type Ingester struct {
	opts  Options
	parts map[int32]*partition
	// revoked holds partitions revoked since the last transaction ended,
	// until their counts are settled.
	revoked []*partition
	acct    *accounting
	byPart  map[int32][]*kgo.Record
}

// Defaults of Options.
const (
	DefaultMaxFutureSkew = 5 * time.Minute
	DefaultMaxDedupeIDs  = 1_000_000
	DefaultMaxPoolItems  = 100_000
)

// New returns an Ingester; opts must be valid.
func New(opts Options) *Ingester {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxFutureSkew <= 0 {
		opts.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if opts.MaxDedupeIDs <= 0 {
		opts.MaxDedupeIDs = DefaultMaxDedupeIDs
	}
	if opts.MaxPoolItems <= 0 {
		opts.MaxPoolItems = DefaultMaxPoolItems
	}
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = 64 << 10
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &Ingester{opts: opts, parts: map[int32]*partition{}, acct: newAccounting(opts.Metrics, opts.Registry.Names()),
		byPart: map[int32][]*kgo.Record{}}
}

// Restore rebuilds the join state of partitions from the changelog.
func (g *Ingester) Restore(ctx context.Context, partitions []int32) error {
	for _, p := range partitions {
		st := g.newPartition(p)
		err := stream.ReadPartition(ctx, g.opts.Client, g.opts.Changelog, p, func(r *kgo.Record) error {
			return st.apply(r.Key, r.Value, g.window)
		})
		if err != nil {
			return fmt.Errorf("cannot restore join state of partition %d: %w", p, err)
		}
		// A restored window waits its full length again from now, so the
		// backlog a restarted process still has to read can join it.
		now := g.opts.Now().UnixMilli()
		g.clampFuture(st, now)
		for _, pd := range st.pending {
			pd.arrival = now
		}
		g.acct.restored.Add(len(st.pending))
		g.logf("ingest: restored partition %d: %d pending, %d event ids, watermark %s", p, len(st.pending), len(st.seen.ids),
			time.UnixMilli(st.watermark).UTC().Format(time.RFC3339Nano))
		g.parts[p] = st
	}
	g.acct.setPending(g.pendingCount())
	return nil
}

// clampFuture bounds restored state by the wall clock: state written
// before event times were bounded (or under a clock since set back) may
// hold a watermark beyond now plus the allowed skew, which would make every
// event late; it is clamped. Pending impressions from beyond it are dropped
// (a tombstone is written with the next batch), and dedupe segments expire
// as if their ids were at most that late.
func (g *Ingester) clampFuture(st *partition, now int64) {
	limit := now + g.opts.MaxFutureSkew.Milliseconds()
	if st.watermark > limit {
		g.logf("ingest: partition %d: restored watermark %s is beyond wall clock + max_future_skew, clamped to %s", st.id,
			time.UnixMilli(st.watermark).UTC().Format(time.RFC3339Nano), time.UnixMilli(limit).UTC().Format(time.RFC3339Nano))
		st.watermark, st.wmDirty = limit, true
	}
	dropped := 0
	for key, p := range st.pending {
		if p.ex.EventTime > limit {
			st.remove(key, p)
			dropped++
		}
	}
	if dropped > 0 {
		g.logf("ingest: partition %d: dropped %d restored impressions dated beyond wall clock + max_future_skew", st.id, dropped)
	}
	st.seen.clampTimes(limit)
}

// Revoke drops the state of partitions that moved to another process. A
// revocation can come while a transaction is open: the partitions' counts
// are settled when it ends.
func (g *Ingester) Revoke(partitions []int32) {
	for _, p := range partitions {
		if st := g.parts[p]; st != nil {
			g.revoked = append(g.revoked, st)
		}
		delete(g.parts, p)
	}
	g.acct.setPending(g.pendingCount())
}

// Commit publishes the accounting of the committed batch.
func (g *Ingester) Commit() {
	tallies := make([]*tally, 0, len(g.parts)+len(g.revoked))
	for _, st := range g.parts {
		tallies = append(tallies, st.tally)
	}
	for _, st := range g.revoked {
		tallies = append(tallies, st.tally)
		g.acct.released.Add(len(st.pending))
	}
	g.revoked = nil
	g.acct.commit(tallies)
	g.acct.setPending(g.pendingCount())
}

// Abort drops all state: the loop restores it from the changelog. The
// pending impressions of the last commit leave with the state (released)
// and come back with the restore (restored).
func (g *Ingester) Abort() []int32 {
	owned := make([]int32, 0, len(g.parts))
	for p, st := range g.parts {
		owned = append(owned, p)
		g.acct.released.Add(len(st.pending) - int(st.tally.pendingDelta))
	}
	for _, st := range g.revoked {
		g.acct.released.Add(len(st.pending) - int(st.tally.pendingDelta))
	}
	g.parts, g.revoked = map[int32]*partition{}, nil
	return owned
}

// Process handles one batch of event records. Join state changes are
// written to the changelog once per batch: the last state of each changed
// pair, the watermark, and the batch's new event ids.
func (g *Ingester) Process(_ context.Context, recs []*kgo.Record, emit func(*kgo.Record)) error {
	for p, rs := range g.byPart {
		g.byPart[p] = rs[:0]
	}
	for _, r := range recs {
		g.byPart[r.Partition] = append(g.byPart[r.Partition], r)
		if g.parts[r.Partition] == nil {
			g.parts[r.Partition] = g.newPartition(r.Partition)
		}
	}
	now := g.opts.Now().UnixMilli()
	order := make([]int32, 0, len(g.parts))
	var wg sync.WaitGroup
	for p, st := range g.parts {
		order = append(order, p)
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.processPartition(st, g.byPart[p], now)
		}()
	}
	wg.Wait()
	slices.Sort(order)
	for _, p := range order {
		st := g.parts[p]
		for i, r := range st.out {
			emit(r)
			st.out[i] = nil
		}
		st.out = st.out[:0]
	}
	return nil
}

// processPartition runs one partition's records through the join; its
// outputs collect in st.out. A partition without records in the batch is
// idle: its windows close by wall clock (at most every 100 ms), whatever
// the other partitions do.
func (g *Ingester) processPartition(st *partition, recs []*kgo.Record, now int64) {
	for _, r := range recs {
		if !st.open {
			st.open, st.firstOffset, st.firstRouted = true, r.Offset, r.Topic == g.opts.Topics.Repartition && r.Topic != ""
		}
		before := st.watermark
		g.handle(st, r, now)
		if st.watermark != before {
			st.wmDirty = true
			g.closeByWatermark(st)
		}
	}
	if len(recs) == 0 && now-st.lastIdle >= 100 {
		st.lastIdle = now
		g.closeIdle(st, now)
	}
	g.flush(st)
}

// flush writes the open transaction's join state changes of a partition to
// its changelog partition.
func (g *Ingester) flush(st *partition) {
	log := func(key string, value []byte) {
		st.emit(&kgo.Record{Topic: g.opts.Changelog, Partition: st.id, Key: []byte(key), Value: value})
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
	st.pool.flush(log)
	if st.open {
		key := dedupeKey(st.firstOffset, st.firstRouted)
		if v := st.seen.seal(key); v != nil {
			log(key, v)
		}
		st.open = false
		keys, forgot := st.seen.shrink(g.opts.MaxDedupeIDs)
		for _, key := range keys {
			log(key, nil)
		}
		st.tally.dedupeForgotten += int64(forgot)
	}
	if st.wmDirty {
		for _, key := range st.seen.expire(st.watermark - g.opts.AllowedLateness.Milliseconds() - dedupeHorizon) {
			log(key, nil)
		}
		log(watermarkKey, binary.AppendVarint(nil, st.watermark))
		st.wmDirty = false
	}
}

// newPartition returns the empty state of partition p, with the bounds.
func (g *Ingester) newPartition(p int32) *partition {
	st := newPartition(p)
	st.pool.max = g.opts.MaxPoolItems
	return st
}

func (g *Ingester) logf(format string, args ...any) { g.opts.Logf(format, args...) }

// window returns the attribution window of a task in ms.
func (g *Ingester) window(task string) int64 {
	if c := g.opts.Registry.Canvas(task); c != nil {
		return c.AttributionWindow.Milliseconds()
	}
	return 0
}

// handle routes one event record to its outcome. A repeated event id is a
// duplicate even when it is also late: it was processed once already. Only
// accepted ids are remembered: a dead-lettered event (late, future,
// invalid), fixed and replayed, is judged afresh.
func (g *Ingester) handle(st *partition, r *kgo.Record, now int64) {
	st.tally.consumed++
	e, rej := st.dec.Decode(r.Value, g.opts.MaxEventBytes)
	if rej == nil {
		rej = g.opts.Registry.Check(e)
	}
	if rej != nil {
		g.deadLetter(st, r, rej)
		return
	}
	if g.route(st, r, e) {
		return
	}
	t := e.Time.UnixMilli()
	if skew := g.opts.MaxFutureSkew; t > now+skew.Milliseconds() {
		g.deadLetter(st, r, reject(ReasonFuture, "event time %s is %s ahead of the wall clock, max future skew is %s",
			e.Time.Format(time.RFC3339Nano), time.Duration(t-now)*time.Millisecond, skew))
		return
	}
	id, dup := st.seen.has(e.EventID)
	if dup {
		st.tally.outcomes[outcomeDuplicate]++
		return
	}
	if st.watermark-t > g.opts.AllowedLateness.Milliseconds() {
		g.deadLetter(st, r, reject(ReasonLate, "event time %s is %s behind the partition watermark, allowed lateness is %s",
			e.Time.Format(time.RFC3339Nano), time.Duration(st.watermark-t)*time.Millisecond, g.opts.AllowedLateness))
		return
	}
	st.seen.add(id, t)
	if t > st.watermark {
		st.watermark = t
	}
	c := g.opts.Registry.Canvas(e.Canvas)
	ex := g.opts.Registry.normalize(e, st.lastCtx)
	st.lastCtx = ex.Context
	if ex.Item.Type == "" && g.opts.Catalog != nil {
		if m, ok := g.opts.Catalog.Lookup(ex.ItemID); ok {
			ex.Item = m
		}
	}
	if e.Action == ActionImpression {
		g.impression(st, ex, now)
		return
	}
	g.engagement(st, c, ex)
}

// route produces an event read from the wrong partition of the events
// topic to its partition of the repartition topic, in the open
// transaction, and reports whether it did.
func (g *Ingester) route(st *partition, r *kgo.Record, e *Event) bool {
	n := g.opts.Partitions
	if n <= 0 || r.Topic != g.opts.Topics.Events {
		return false
	}
	key := routingKey(e)
	p := keyPartition(key, n)
	if p == st.id {
		return false
	}
	st.tally.outcomes[outcomeRepartitioned]++
	st.emit(&kgo.Record{Topic: g.opts.Topics.Repartition, Partition: p, Key: []byte(key), Value: r.Value, Headers: r.Headers})
	return true
}

func (g *Ingester) deadLetter(st *partition, r *kgo.Record, rej *Rejection) {
	st.tally.deadLetter(rej.Reason)
	st.emit(stream.DeadLetter(g.opts.Topics.DeadLetters, r, rej.Reason, rej.Detail))
}

func (g *Ingester) impression(st *partition, ex stream.Example, now int64) {
	st.scratch = appendJoinKey(st.scratch[:0], ex.RequestID, ex.ItemID)
	if st.pending[string(st.scratch)] != nil {
		st.tally.outcomes[outcomeDuplicate]++
		return
	}
	key := string(st.scratch)
	p := &pending{ex: ex, arrival: now}
	st.add(key, p, ex.EventTime+g.window(ex.Task))
	st.tally.pendingDelta++
	st.touch(key, p)
}

// engagement labels the pair of an engagement or dismiss: with the pending
// impression's context when there is one, on its own otherwise.
func (g *Ingester) engagement(st *partition, c *Canvas, ex stream.Example) {
	act := c.Actions[ex.Action]
	w := float32(act.Weight)
	st.scratch = appendJoinKey(st.scratch[:0], ex.RequestID, ex.ItemID)
	p := st.pending[string(st.scratch)]
	if p == nil || ex.RequestID == "" {
		g.emitExample(st, &ex, act.Positive, w*float32(c.Weight), 0)
		if act.Positive && c.EngagementOnly {
			g.sampleNegatives(st, c, &ex)
		}
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
		g.emitExample(st, &out, false, w*float32(c.Weight), 0)
	case w > p.emitted:
		g.emitExample(st, &out, true, (w-p.emitted)*float32(c.Weight), 0)
		p.emitted = w
	default:
		st.tally.outcomes[outcomeJoined]++
	}
	st.touch(p.key, p)
}

// closeByWatermark ends, in event-time order, the impressions whose
// attribution window closed before the watermark minus the allowed
// lateness: no engagement that is not late can still join them.
func (g *Ingester) closeByWatermark(st *partition) {
	limit := st.watermark - g.opts.AllowedLateness.Milliseconds()
	for len(st.closes) > 0 && st.closes[0].at < limit {
		c := st.closes.pop()
		if p := st.pending[c.key]; p != nil && p.closeAt == c.at {
			g.close(st, c.key, p)
		}
	}
}

// closeIdle ends impressions of partitions whose watermark stopped: by wall
// clock, window plus allowed lateness after they arrived.
func (g *Ingester) closeIdle(st *partition, now int64) {
	lateness := g.opts.AllowedLateness.Milliseconds()
	for key, p := range st.pending {
		if p.arrival+g.window(p.ex.Task)+lateness <= now {
			g.close(st, key, p)
		}
	}
}

// close ends one pending impression: a negative example unless an
// engagement already labelled it, or stratification drops it.
func (g *Ingester) close(st *partition, key string, p *pending) {
	if p.closed {
		panic("BUG: closed twice " + key + " " + p.ex.EventID)
	}
	if st.pending[key] != p {
		panic("BUG: closing a pair that is not pending " + key)
	}
	p.closed = true
	st.remove(key, p)
	st.tally.pendingDelta--
	c := g.opts.Registry.Canvas(p.ex.Task)
	if c == nil { // restored state of a canvas removed from the config
		c = &Canvas{NegativeKeepRate: 1, Weight: 1}
	}
	switch {
	case p.resolved:
		st.tally.outcomes[outcomeJoined]++
	case c.NegativeKeepRate < 1 && keepFraction(p.ex.EventID) >= c.NegativeKeepRate:
		st.tally.outcomes[outcomeSampledOut]++
		st.tally.task(p.ex.Task).sampledOut++
	default:
		rate := float32(0)
		if c.NegativeKeepRate < 1 {
			rate = float32(c.NegativeKeepRate)
		}
		st.tally.task(p.ex.Task).kept++
		g.emitExample(st, &p.ex, false, float32(c.Weight), rate)
	}
}

// emitExample emits the example of one event.
func (g *Ingester) emitExample(st *partition, ex *stream.Example, positive bool, weight, sampleProb float32) {
	g.appendExample(st, ex, positive, weight, sampleProb)
	st.tally.outcomes[outcomeExample]++
}

// appendExample labels ex and adds it to the partition's outputs. Record
// values are cut from a shared slab to save allocations.
func (g *Ingester) appendExample(st *partition, ex *stream.Example, positive bool, weight, sampleProb float32) {
	ex.Label, ex.Weight, ex.SampleProb = 0, weight, sampleProb
	tt := st.tally.task(ex.Task)
	if positive {
		ex.Label = 1
		tt.positive++
	} else {
		tt.negative++
	}
	if cap(st.slab)-len(st.slab) < 4096 {
		st.slab = make([]byte, 0, 256<<10)
	}
	start := len(st.slab)
	st.slab = stream.AppendExample(st.slab, ex)
	r := st.newRecord()
	r.Topic, r.Key, r.Value = g.opts.Topics.Examples, st.taskKey(ex.Task), st.slab[start:len(st.slab):len(st.slab)]
	st.emit(r)
}

// keepFraction maps an event id to [0, 1) deterministically, so that
// stratified sampling gives the same answer on every replay. FNV alone
// leaves the high bits of similar short ids alike; the finalizer mixes them.
func keepFraction(eventID string) float64 { return unit(hashString(eventID)) }

func (g *Ingester) pendingCount() int {
	n := 0
	for _, st := range g.parts {
		n += len(st.pending)
	}
	return n
}
