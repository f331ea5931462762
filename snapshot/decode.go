package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/stream"
)

// MaxDecodedBytes bounds the decompressed size of a snapshot payload, so a
// hostile or corrupt snapshot cannot exhaust memory.
const MaxDecodedBytes = 4 << 30

// decodePayload verifies and decodes a compressed payload into a capture
// described by m.
func decodePayload(m *Manifest, payload []byte) (*online.Capture, error) {
	if checksum(payload) != m.Checksum {
		return nil, fmt.Errorf("%w: version %d payload checksum mismatch", ErrCorrupt, m.Version)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(MaxDecodedBytes), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd decoder: %w", err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(payload, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, m.Version, err)
	}
	c := &online.Capture{Config: m.Config, Version: m.Version, Offsets: m.Offsets,
		Watermark: m.Watermark.UnixMilli(), Applied: m.Applied, Progress: m.Progress,
		Tasks: map[string]online.TaskParams{}, Popular: map[string][]online.Popular{}}
	r := reader{b: raw}
	readModel(&r, c)
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, m.Version, r.err)
	}
	if len(c.IDs) != m.Rows || len(c.Items) != m.Items {
		return nil, fmt.Errorf("%w: version %d has %d rows and %d items, manifest says %d and %d",
			ErrCorrupt, m.Version, len(c.IDs), len(c.Items), m.Rows, m.Items)
	}
	return c, nil
}

func readModel(r *reader, c *online.Capture) {
	d := c.Config.Dim
	n := r.count(8 + 4*(d+1))
	c.IDs = make([]uint64, n)
	for i := range c.IDs {
		c.IDs[i] = r.u64()
	}
	c.Weights = r.floats(n * (d + 1))
	for nt := r.count(4 + 8*d); nt > 0 && r.err == nil; nt-- {
		name := r.str()
		bias := r.f32()
		fs := r.floats(2 * d)
		if r.err == nil {
			c.Tasks[name] = online.TaskParams{Bias: bias, Scale: fs[:d], Shift: fs[d:]}
		}
	}
	c.Items = make([]online.Item, 0, r.count(1))
	for ni := cap(c.Items); ni > 0 && r.err == nil; ni-- {
		var ex stream.Example
		if err := stream.DecodeExample(r.bytes(), &ex); err != nil && r.err == nil {
			r.err = err
		}
		c.Items = append(c.Items, online.Item{ID: ex.ItemID, Meta: ex.Item})
	}
	for np := r.count(1); np > 0 && r.err == nil; np-- {
		task := r.str()
		list := make([]online.Popular, r.count(9))
		for i := range list {
			list[i] = online.Popular{Item: r.str(), Score: math.Float64frombits(r.u64())}
		}
		c.Popular[task] = list
	}
}

// reader decodes the payload; the first error sticks and later reads return
// zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or malformed %s", what)
	}
	r.b = nil
}

// count reads a count of items of at least minSize bytes each.
func (r *reader) count(minSize int) int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)/max(minSize, 1)) {
		r.fail("count")
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *reader) bytes() []byte {
	n := r.count(1)
	if r.err != nil {
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str() string { return string(r.bytes()) }

func (r *reader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail("uint64")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) f32() float32 {
	if len(r.b) < 4 {
		r.fail("float32")
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}

func (r *reader) floats(n int) []float32 {
	if n < 0 || len(r.b) < 4*n {
		r.fail("floats")
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(r.b[4*i:]))
	}
	r.b = r.b[4*n:]
	return out
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
