package online

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// The first stage of the trainer's pipeline: poll, decode and featurize.
// Batches circulate between a free list and the ready channel, so the
// steady state allocates only the decoded strings.

const (
	batchSize       = 2048 // records per batch
	batchesInFlight = 4
)

// batch is a run of consecutive records, decoded and featurized. With
// mini-batches (model.step > 1) it holds whole steps: the records after
// the last step end (an open step) move to the next batch before it is
// sent.
type batch struct {
	recs   []prepared
	n      int
	closed int // records up to the end of the last step
}

type prepared struct {
	partition int32
	offset    int64
	value     []byte // the record's value until it is decoded (decode)
	err       error
	stepEnd   bool // the last record of its step
	ex        stream.Example
	f         features
}

// stepCutter cuts the log into mini-batch steps by the log alone: a step
// ends after max records, at a transaction marker (a control record), and
// after any record produced outside a transaction. Every trainer reading
// the log cuts the same steps, and no step waits for records that may
// never come: a transaction's records become readable with its marker.
type stepCutter struct {
	max, open int
}

// added counts r, just added to b, in the open step.
func (c *stepCutter) added(b *batch, r *kgo.Record) {
	c.open++
	if c.open >= c.max || !r.Attrs.IsTransactional() {
		c.end(b)
	}
}

// end ends the open step at b's last record.
func (c *stepCutter) end(b *batch) {
	if c.open > 0 && b.n > 0 {
		b.recs[b.n-1].stepEnd = true
		b.closed = b.n
	}
	c.open = 0
}

// features are what learning from an example reads besides its fields:
// pure functions of the example and the model's config (feature ids,
// memory keys, the user), so the first stage computes them beside the
// learner.
type features struct {
	ctx, item []uint64
	// shared says the context side was copied from the record before, of
	// the same request: the learner may reuse its rows' slots.
	shared bool
	mem    []model.MemoryKey
	memX   []float32 // memory features read for mem (readLane), one per key
	user   uint64
	itemH  uint64 // the hash of the item id, the memory's (with mem only)
}

// featurize fills f for ex.
func (f *features) featurize(feat model.Featurizer, mem model.MemoryConfig, ex *stream.Example) {
	f.ctx = feat.Context(f.ctx[:0], ex.Task, ex.Context, time.UnixMilli(ex.EventTime))
	f.item = feat.Item(f.item[:0], ex.Task, ex.ItemID, ex.Item)
	f.mem, f.user, f.shared = mem.MemoryKeys(f.mem[:0], ex.Task, ex.Context), 0, false
	if len(f.mem) > 0 {
		f.user = model.MemoryUser(ex.Context)
	}
	f.memoryFor(ex.ItemID)
}

// memoryFor makes room in memX for a feature per memory key (the log
// stage's lanes each write their keys': readLane) and hashes item, the id
// every lane looks up in its lists, once.
func (f *features) memoryFor(item string) {
	f.memX = slices.Grow(f.memX[:0], len(f.mem))[:len(f.mem)]
	if len(f.mem) > 0 {
		f.itemH = itemHash(item)
	}
}

// prepare polls cl until ctx ends and sends full batches to ready. An
// empty poll still sends an empty batch, so the learner commits on time.
// An offset out of range (records deleted while running) ends it with
// ErrOffsetOutOfRange: the client does not rewind silently.
func (t *Trainer) prepare(ctx context.Context, cl *kgo.Client, free <-chan *batch, ready chan<- *batch) error {
	decs := make([]*stream.ExampleDecoder, t.prepareWorkers())
	for i := range decs {
		decs[i] = stream.NewExampleDecoder()
	}
	cut := stepCutter{max: max(1, t.cfg.Step)}
	// send decodes a batch, then waits for the learner; while it or next
	// would block, prepare first does its log stage's chunks (logstage.go).
	// While the learner has a batch waiting, prepare is ahead, so it does
	// them first, every logStageChunk records it takes and after every
	// chunk it decodes: each one it does is one the learner, the critical
	// path, would otherwise reach and do itself.
	ahead := func() { t.helpWhile(func() bool { return len(ready) > 0 }) }
	send := func(b *batch) bool {
		b.decode(decs, t.feat, t.cfg.Memory, ahead)
		t.helpWhile(func() bool { return len(ready) == cap(ready) })
		select {
		case ready <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	next := func() *batch {
		t.helpWhile(func() bool { return len(free) == 0 })
		select {
		case b := <-free:
			b.n, b.closed = 0, 0
			return b
		case <-ctx.Done():
			return nil
		}
	}
	var b *batch
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, kerr.OffsetOutOfRange) {
				return outOfRange(fe.Topic, fe.Partition, t.Offsets()[fe.Partition], "the broker no longer has it")
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if b == nil {
			if b = next(); b == nil {
				return nil
			}
		}
		ok := true
		fetches.EachRecord(func(r *kgo.Record) {
			if !ok {
				return
			}
			if r.Attrs.IsControl() { // kept only to end steps
				cut.end(b)
				return
			}
			if b.n >= batchSize && b.closed == b.n {
				if ok = send(b); !ok {
					return
				}
				if b = next(); b == nil {
					ok = false
					return
				}
			}
			b.add(r)
			cut.added(b, r)
			if b.n%logStageChunk == 0 {
				ahead()
			}
		})
		if !ok {
			return nil
		}
		// The learner gets the whole steps; an open step waits in the next
		// batch for the rest of its records.
		var nb *batch
		if b.closed < b.n {
			if nb = next(); nb == nil {
				return nil
			}
			nb.takeOpenStep(b)
		}
		if !send(b) {
			return nil
		}
		b = nb
	}
	return nil
}

// prepareWorkers is how many goroutines decode a batch.
func (t *Trainer) prepareWorkers() int {
	if n := t.opts.PrepareWorkers; n > 0 {
		return n
	}
	return max(1, runtime.GOMAXPROCS(0)/4)
}

// takeOpenStep moves the records of o's open step (after o.closed) to b.
func (b *batch) takeOpenStep(o *batch) {
	for i := o.closed; i < o.n; i++ {
		if b.n == len(b.recs) {
			b.recs = append(b.recs, prepared{})
		}
		b.recs[b.n], o.recs[i] = o.recs[i], b.recs[b.n]
		b.n++
	}
	o.n = o.closed
}

// add puts r in the next slot of b, to be decoded before b is sent.
func (b *batch) add(r *kgo.Record) {
	if b.n == len(b.recs) {
		b.recs = append(b.recs, prepared{})
	}
	p := &b.recs[b.n]
	b.n++
	p.partition, p.offset, p.value, p.stepEnd = r.Partition, r.Offset, r.Value, false
}

// prepareChunk is how many records a prepare worker decodes at a time.
const prepareChunk = 256

// decode decodes and featurizes b's records, in chunks of prepareChunk
// shared by the workers of decs (one decoder each), each calling between
// after each of its chunks. Each record's example and features are a
// function of the record alone, so who decodes which chunk changes nothing
// but the shared flag of a chunk's first record (a hint: the learner
// checks the slots it reuses).
func (b *batch) decode(decs []*stream.ExampleDecoder, f model.Featurizer, mem model.MemoryConfig, between func()) {
	chunks := (b.n + prepareChunk - 1) / prepareChunk
	var next atomic.Int64
	work := func(dec *stream.ExampleDecoder) {
		for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
			b.decodeRange(dec, f, mem, c*prepareChunk, min(b.n, (c+1)*prepareChunk))
			between()
		}
	}
	if len(decs) == 1 || chunks < 2 {
		work(decs[0])
		return
	}
	var wg sync.WaitGroup
	for _, dec := range decs[:min(len(decs), chunks)] {
		wg.Go(func() { work(dec) })
	}
	wg.Wait()
}

// decodeRange decodes and featurizes the records [lo, hi) of b; a record
// of the same request as the one before it in the range copies its
// context side.
func (b *batch) decodeRange(dec *stream.ExampleDecoder, f model.Featurizer, mem model.MemoryConfig, lo, hi int) {
	for i := lo; i < hi; i++ {
		p := &b.recs[i]
		p.err = dec.Decode(p.value, &p.ex)
		p.value = nil
		if p.err != nil {
			continue
		}
		if i > lo && sameContext(&b.recs[i-1], p) {
			p.f.copyContext(&b.recs[i-1].f)
			p.f.memoryFor(p.ex.ItemID)
			p.f.item = f.Item(p.f.item[:0], p.ex.Task, p.ex.ItemID, p.ex.Item)
			continue
		}
		p.f.featurize(f, mem, &p.ex)
	}
}

// sameContext says whether q's example has the context features of p's:
// the examples of one request (a positive and its negatives, the items of
// one impression) share task, context and hour, so their context side is
// featurized once.
func sameContext(p, q *prepared) bool {
	return p.err == nil && p.ex.Task == q.ex.Task && hourOf(p.ex.EventTime) == hourOf(q.ex.EventTime) &&
		slices.Equal(p.ex.Context, q.ex.Context)
}

// hourOf is the hour since the epoch of a time in ms: context features
// read the hour of day and the weekday, both functions of it.
func hourOf(ms int64) int64 {
	const hour = 3_600_000
	h := ms / hour
	if ms%hour < 0 {
		h--
	}
	return h
}

// copyContext takes the context side (features, memory keys, user) of o.
func (f *features) copyContext(o *features) {
	f.ctx = append(f.ctx[:0], o.ctx...)
	f.mem = append(f.mem[:0], o.mem...)
	f.user, f.shared = o.user, true
}
