package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// MaxDecodedBytes bounds the decompressed size of a snapshot payload, so a
// hostile or corrupt snapshot cannot exhaust memory.
const MaxDecodedBytes = 4 << 30

// decodePayload verifies a compressed payload against m and decodes it.
func decodePayload(m *Manifest, payload []byte) (*Delta, error) {
	if err := verifyChecksum(m, payload); err != nil {
		return nil, err
	}
	if err := m.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, m.Version, err)
	}
	if err := m.Encoding.Validate(); err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, m.Version, err)
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
	d := &Delta{Dim: m.Config.Dim, Tasks: map[string]model.TaskParams{}, Popular: map[string][]model.Popular{}}
	r := reader{b: raw}
	readDelta(&r, d, m.Encoding)
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, m.Version, r.err)
	}
	if len(d.IDs) != m.Rows || len(d.Deleted) != m.Deleted || len(d.Items) != m.Items || len(d.Tasks) != m.Tasks || len(d.Memory) != m.Memory {
		return nil, fmt.Errorf("%w: version %d has %d rows, %d deleted, %d items, %d tasks, %d memory lists; manifest says %d, %d, %d, %d, %d",
			ErrCorrupt, m.Version, len(d.IDs), len(d.Deleted), len(d.Items), len(d.Tasks), len(d.Memory), m.Rows, m.Deleted, m.Items, m.Tasks, m.Memory)
	}
	if !slices.IsSorted(d.IDs) || !slices.IsSorted(d.Deleted) || !slices.IsSorted(d.MemoryDeleted) {
		return nil, fmt.Errorf("%w: version %d: row ids are not sorted", ErrCorrupt, m.Version)
	}
	return d, nil
}

// verifyChecksum checks the compressed payload against the manifest's
// SHA-256.
func verifyChecksum(m *Manifest, payload []byte) error {
	if checksum(payload) != m.Checksum {
		return fmt.Errorf("%w: version %d payload checksum mismatch", ErrCorrupt, m.Version)
	}
	return nil
}

func readDelta(r *reader, d *Delta, enc Encoding) {
	dim := d.Dim
	rb := enc.rowBytes(dim)
	n := r.count(8 + rb)
	d.IDs = make([]uint64, n)
	for i := range d.IDs {
		d.IDs[i] = r.u64()
	}
	d.Weights = make([]float32, n*(dim+1))
	for i := 0; i < n && r.err == nil; i++ {
		src := r.raw(rb)
		if r.err == nil {
			enc.decodeRow(d.Row(i), src)
		}
	}
	d.Deleted = make([]uint64, r.count(8))
	for i := range d.Deleted {
		d.Deleted[i] = r.u64()
	}
	var names []string
	for nt := r.count(4 + 8*dim); nt > 0 && r.err == nil; nt-- {
		name := r.str()
		names = append(names, name)
		bias := r.f32()
		fs := r.floats(2 * dim)
		if r.err == nil {
			d.Tasks[name] = model.TaskParams{Bias: bias, Scale: fs[:dim:dim], Shift: fs[dim:]}
		}
	}
	for ni := r.count(1); ni > 0 && r.err == nil; ni-- {
		var ex stream.Example
		if err := stream.DecodeExample(r.bytes(), &ex); err != nil && r.err == nil {
			r.err = err
		}
		d.Items = append(d.Items, model.Item{ID: ex.ItemID, Meta: ex.Item})
	}
	for np := r.count(1); np > 0 && r.err == nil; np-- {
		task := r.str()
		list := make([]model.Popular, r.count(9))
		for i := range list {
			list[i] = model.Popular{Item: r.str(), Score: math.Float64frombits(r.u64())}
		}
		d.Popular[task] = list
	}
	readMemory(r, d, names)
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

func (r *reader) raw(n int) []byte {
	if len(r.b) < n {
		r.fail("row")
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
