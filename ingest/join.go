package ingest

import (
	"encoding/binary"
	"fmt"
	"math"

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
}

// partition is the join state of one events partition.
type partition struct {
	pending   map[string]*pending // by join key
	watermark int64               // newest event time seen, ms
	seen      map[string]int64    // event ids seen -> event time, for de-duplication
}

func newPartition() *partition {
	return &partition{pending: map[string]*pending{}, seen: map[string]int64{}}
}

// joinKey is the changelog key of the (request, item) pair.
func joinKey(requestID, itemID string) string {
	return "p" + requestID + "\x00" + itemID
}

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

// apply loads one changelog record into the partition state.
func (s *partition) apply(key, value []byte) error {
	k := string(key)
	if k == watermarkKey {
		w, n := binary.Varint(value)
		if n <= 0 {
			return fmt.Errorf("cannot decode watermark")
		}
		s.watermark = w
		return nil
	}
	if value == nil {
		delete(s.pending, k)
		return nil
	}
	p, err := decodePending(value)
	if err != nil {
		return err
	}
	s.pending[k] = p
	return nil
}
