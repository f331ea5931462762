package ingest

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cespare/xxhash/v2"
)

// dedupeHorizon is how long (in event time, behind the watermark minus the
// allowed lateness) the event ids of a partition are remembered.
const dedupeHorizon = int64(time.Hour / time.Millisecond)

// dedupe is the set of event ids a partition saw within the horizon, kept
// as 64-bit xxhash digests: 8 bytes per id in memory and in the changelog.
// A false duplicate needs two ids of one partition within the horizon to
// collide, probability about n²/2⁶⁵ (3e-8 for a million ids), and would be
// counted as a duplicate, not lost silently. Ids arrive in segments, one
// per transaction; each segment is one changelog record written in that
// transaction, so the set survives a crash and moves with its partition,
// and a duplicate is caught across restarts. Segments expire whole, oldest
// first, with a tombstone.
type dedupe struct {
	ids  map[uint64]struct{}
	segs []segment // persisted, oldest first
	cur  segment   // ids of the open transaction
}

// segment is a group of ids persisted under one changelog key.
type segment struct {
	key     string
	maxTime int64 // newest event time of its ids
	ids     []uint64
}

func newDedupe() dedupe { return dedupe{ids: map[uint64]struct{}{}} }

// has reports whether id was seen, and its digest for add.
func (d *dedupe) has(id string) (uint64, bool) {
	h := xxhash.Sum64String(id)
	_, ok := d.ids[h]
	return h, ok
}

// add records the digest of an id accepted at event time t. Only accepted
// events are remembered: a late one, fixed and replayed, is not a
// duplicate.
func (d *dedupe) add(h uint64, t int64) {
	d.ids[h] = struct{}{}
	d.cur.ids = append(d.cur.ids, h)
	d.cur.maxTime = max(d.cur.maxTime, t)
}

// dedupeKey is the changelog key of the segment that starts at an offset
// of the events partition, or of the repartition partition when routed:
// unique, and the same when a batch is retried.
func dedupeKey(offset int64, routed bool) string {
	if routed {
		return fmt.Sprintf("dr%016x", offset)
	}
	return fmt.Sprintf("d%016x", offset)
}

// seal ends the open segment under key and returns its changelog value, or
// nil when it is empty.
func (d *dedupe) seal(key string) []byte {
	if len(d.cur.ids) == 0 {
		return nil
	}
	d.cur.key = key
	d.segs = append(d.segs, d.cur)
	v := encodeSegment(&d.cur)
	d.cur = segment{}
	return v
}

// expire forgets the oldest segments whose ids are all older than limit and
// returns their keys, to be tombstoned.
func (d *dedupe) expire(limit int64) []string {
	var keys []string
	for len(d.segs) > 0 && d.segs[0].maxTime < limit {
		s := d.segs[0]
		for _, id := range s.ids {
			delete(d.ids, id)
		}
		keys = append(keys, s.key)
		d.segs[0] = segment{}
		d.segs = d.segs[1:]
	}
	return keys
}

// clampTimes lowers the newest event time of every segment to at most
// limit, so segments restored from beyond the wall clock still expire.
func (d *dedupe) clampTimes(limit int64) {
	for i := range d.segs {
		d.segs[i].maxTime = min(d.segs[i].maxTime, limit)
	}
}

// shrink forgets the oldest segments until at most max ids are left (the
// open one stays) and returns their keys, to be tombstoned, and how many
// ids it forgot.
func (d *dedupe) shrink(max int) (keys []string, forgot int) {
	for len(d.ids) > max && len(d.segs) > 0 {
		s := d.segs[0]
		for _, id := range s.ids {
			delete(d.ids, id)
		}
		keys, forgot = append(keys, s.key), forgot+len(s.ids)
		d.segs[0] = segment{}
		d.segs = d.segs[1:]
	}
	return keys, forgot
}

// load restores one changelog segment; a nil value removes it.
func (d *dedupe) load(key string, value []byte) error {
	if value == nil {
		for i, s := range d.segs {
			if s.key == key {
				for _, id := range s.ids {
					delete(d.ids, id)
				}
				d.segs = append(d.segs[:i], d.segs[i+1:]...)
				break
			}
		}
		return nil
	}
	s, err := decodeSegment(key, value)
	if err != nil {
		return err
	}
	for _, id := range s.ids {
		d.ids[id] = struct{}{}
	}
	d.segs = append(d.segs, s)
	return nil
}

const segmentCodecVersion = 2

func encodeSegment(s *segment) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+8*len(s.ids))
	b = append(b, segmentCodecVersion)
	b = binary.AppendVarint(b, s.maxTime)
	b = binary.AppendUvarint(b, uint64(len(s.ids)))
	for _, id := range s.ids {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	return b
}

func decodeSegment(key string, b []byte) (segment, error) {
	s := segment{key: key}
	if len(b) < 1 || b[0] != segmentCodecVersion {
		return s, fmt.Errorf("cannot decode dedupe segment %q: unknown version", key)
	}
	b = b[1:]
	t, n := binary.Varint(b)
	if n <= 0 {
		return s, fmt.Errorf("cannot decode dedupe segment %q: truncated time", key)
	}
	s.maxTime, b = t, b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count != uint64(len(b)-n)/8 || (len(b)-n)%8 != 0 {
		return s, fmt.Errorf("cannot decode dedupe segment %q: %d ids do not fill %d bytes", key, count, len(b)-n)
	}
	b = b[n:]
	s.ids = make([]uint64, count)
	for i := range s.ids {
		s.ids[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return s, nil
}
