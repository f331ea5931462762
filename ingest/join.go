package ingest

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// pending is an impression waiting for engagements until its attribution
// window closes.
type pending struct {
	ex      stream.Example // the normalized impression
	arrival int64          // wall-clock ms when it was consumed
	// emitted is the weight already emitted for this pair: positives are
	// emitted at once and topped up when a stronger action follows, so the
	// total weight of a pair equals its strongest action's weight.
	emitted float32
	// resolved is set once an engagement or dismiss produced its example;
	// the window then closes without a negative.
	resolved bool
	// key is its join key; closeAt is the event time its window closes
	// (neither is persisted).
	key     string
	closeAt int64
	// persisted says the changelog holds a record of this pair, so closing
	// it needs a tombstone (not persisted).
	persisted bool
	closed    bool
}

// partition is the join state of one events partition, and the working
// set of the goroutine that processes it.
type partition struct {
	id        int32
	pending   map[string]*pending // by join key
	closes    closeHeap           // pending keys by the event time their window closes
	watermark int64               // newest event time seen, ms
	lastIdle  int64               // wall-clock ms its idle windows were last swept
	seen      dedupe              // event ids within the horizon

	// The open transaction's changes, written to the changelog once per
	// batch: the last state of each changed pair (nil: delete it), whether
	// the watermark moved, and the first offset of the batch.
	dirty       map[string]*pending
	wmDirty     bool
	open        bool
	firstOffset int64
	firstRouted bool // firstOffset is of the repartition topic

	pool itemPool // items engaged with, per canvas, for negative sampling
	// meta is the last metadata events carried for each item, so a sampled
	// negative has the same item features as a positive of that item (else
	// "has metadata" alone would predict the label). In memory: after a
	// restart an item's metadata returns with its next event.
	meta    map[string]stream.ItemMeta
	tally   *tally
	dec     *EventDecoder
	out     []*kgo.Record // outputs of the open batch, in order
	slab    []byte        // record values are cut from it
	keys    map[string][]byte
	scratch []byte         // join key being looked up
	lastCtx []stream.Field // unified context of the last event, shared when the next one has the same
	recs    []kgo.Record
}

func newPartition(id int32) *partition {
	return &partition{id: id, pending: map[string]*pending{}, seen: newDedupe(), dirty: map[string]*pending{},
		pool: newItemPool(), meta: map[string]stream.ItemMeta{}, tally: newTally(), dec: NewEventDecoder(), keys: map[string][]byte{}}
}

func (s *partition) emit(r *kgo.Record) { s.out = append(s.out, r) }

// newRecord returns a zero record cut from a chunk; chunks are never
// reused, since the producer holds records until they are acknowledged.
func (s *partition) newRecord() *kgo.Record {
	if len(s.recs) == cap(s.recs) {
		s.recs = make([]kgo.Record, 0, 256)
	}
	s.recs = s.recs[:len(s.recs)+1]
	return &s.recs[len(s.recs)-1]
}

// taskKey returns the record key of a task's examples, shared by them.
func (s *partition) taskKey(task string) []byte {
	k, ok := s.keys[task]
	if !ok {
		k = []byte(task)
		s.keys[task] = k
	}
	return k
}

// add records a pending impression whose window closes at closeAt.
func (s *partition) add(key string, p *pending, closeAt int64) {
	p.key, p.closeAt = key, closeAt
	s.pending[key] = p
	s.closes.push(closing{at: closeAt, key: key})
}

// touch marks a pair changed in the open transaction.
func (s *partition) touch(key string, p *pending) { s.dirty[key] = p }

// remove deletes a pair; the changelog gets a tombstone only if it holds
// the pair.
func (s *partition) remove(key string, p *pending) {
	delete(s.pending, key)
	if p.persisted {
		s.dirty[key] = nil
	} else {
		delete(s.dirty, key)
	}
}

// closing is a pending key and the event time its window closes.
type closing struct {
	at  int64
	key string
}

// closeHeap orders pending impressions by window close time, so windows
// close in event-time order as the watermark advances, interleaved with the
// positives of later events. It is a typed binary heap (container/heap
// would box every entry).
type closeHeap []closing

func (h *closeHeap) push(c closing) {
	*h = append(*h, c)
	a := *h
	for i := len(a) - 1; i > 0; {
		parent := (i - 1) / 2
		if a[parent].at <= a[i].at {
			break
		}
		a[parent], a[i] = a[i], a[parent]
		i = parent
	}
}

func (h *closeHeap) pop() closing {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a[last] = closing{}
	a = a[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(a) && a[l].at < a[small].at {
			small = l
		}
		if r < len(a) && a[r].at < a[small].at {
			small = r
		}
		if small == i {
			break
		}
		a[i], a[small] = a[small], a[i]
		i = small
	}
	*h = a
	return top
}

// appendJoinKey appends the changelog key of the (request, item) pair.
func appendJoinKey(dst []byte, requestID, itemID string) []byte {
	dst = append(dst, 'p')
	dst = append(dst, requestID...)
	dst = append(dst, 0)
	return append(dst, itemID...)
}

// Changelog keys: "p" + pair (pending impression), "w" (watermark),
// "d" + offset or "dr" + offset of the repartition topic (a segment of
// the de-duplication set), "c" + canvas + NUL +
// item (engagement count of an item, for negative sampling).

// watermarkKey is the changelog key of the partition's watermark.
const watermarkKey = "w"

const pendingCodecVersion = 1

func encodePending(p *pending) []byte {
	b := []byte{pendingCodecVersion}
	b = binary.AppendVarint(b, p.arrival)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.emitted))
	if p.resolved {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return stream.AppendExample(b, &p.ex)
}

func decodePending(b []byte) (*pending, error) {
	if len(b) < 1 || b[0] != pendingCodecVersion {
		return nil, fmt.Errorf("cannot decode join state: unknown version")
	}
	p := &pending{}
	arrival, n := binary.Varint(b[1:])
	if n <= 0 || len(b) < 1+n+5 {
		return nil, fmt.Errorf("cannot decode join state: truncated")
	}
	p.arrival = arrival
	b = b[1+n:]
	p.emitted = math.Float32frombits(binary.LittleEndian.Uint32(b))
	p.resolved = b[4] == 1
	if err := stream.DecodeExample(b[5:], &p.ex); err != nil {
		return nil, fmt.Errorf("cannot decode join state: %w", err)
	}
	return p, nil
}

// apply loads one changelog record into the partition state; window
// returns the attribution window of a task.
func (s *partition) apply(key, value []byte, window func(task string) int64) error {
	k := string(key)
	if k == watermarkKey {
		w, n := binary.Varint(value)
		if n <= 0 {
			return fmt.Errorf("cannot decode watermark")
		}
		s.watermark = w
		return nil
	}
	if k != "" && k[0] == 'd' {
		return s.seen.load(k, value)
	}
	if k != "" && k[0] == 'c' {
		return s.pool.load(k, value)
	}
	if value == nil {
		delete(s.pending, k)
		return nil
	}
	p, err := decodePending(value)
	if err != nil {
		return err
	}
	p.persisted = true
	if old, ok := s.pending[k]; ok {
		p.key, p.closeAt = k, old.closeAt
		s.pending[k] = p
		return nil
	}
	s.add(k, p, p.ex.EventTime+window(p.ex.Task))
	return nil
}
