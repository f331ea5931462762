package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Manifest describes one snapshot. It is the last record of the snapshot's
// transaction; the chunks before it carry the payload. Its record carries
// an HMAC of its exact bytes (header "unirec.hmac") when a key is
// configured; since it holds the payload's SHA-256 and every chunk's CRC,
// the HMAC authenticates the whole snapshot.
type Manifest struct {
	ModelID string `json:"model_id"`
	Version int64  `json:"version"`
	Kind    string `json:"kind"` // "full" or "delta"
	// BaseVersion is the version a delta applies to (0 for a full).
	BaseVersion int64 `json:"base_version"`
	// FullVersion and FullOffset name the full snapshot this chain starts
	// from and the topic offset of its first record, so a cold replica can
	// seek there instead of reading the whole topic (-1: unknown).
	FullVersion int64                         `json:"full_version"`
	FullOffset  int64                         `json:"full_offset"`
	Encoding    Encoding                      `json:"encoding"`
	Config      model.ModelConfig             `json:"config"`
	Offsets     map[int32]int64               `json:"offsets"`   // examples partition -> next offset
	Watermark   time.Time                     `json:"watermark"` // newest event time included
	Applied     int64                         `json:"applied"`   // examples the model learned from
	Rows        int                           `json:"rows"`      // rows in this payload
	Deleted     int                           `json:"deleted"`   // rows this delta removes
	Tasks       int                           `json:"tasks"`     // task adapters in this payload
	Items       int                           `json:"items"`     // items in this payload
	TotalRows   int                           `json:"total_rows"`
	Memory      int                           `json:"memory"` // memory lists in this payload
	Chunks      int                           `json:"chunks"`
	ChunkCRCs   []uint32                      `json:"chunk_crcs"` // CRC32C of each chunk record
	Bytes       int                           `json:"bytes"`      // compressed payload bytes
	Checksum    string                        `json:"checksum"`   // sha256 of the compressed payload
	Created     time.Time                     `json:"created"`
	Progress    map[string]model.TaskProgress `json:"progress"`
}

// The kinds of snapshot.
const (
	KindFull  = "full"
	KindDelta = "delta"
)

// chunkMagic starts every chunk record.
var chunkMagic = []byte("URS1")

// chunkHeader is magic(4) version(8) index(4) total(4) crc32c(4); the CRC
// covers the header fields before it and the data.
const chunkHeader = 24

// MaxChunks bounds the chunks of one snapshot (8 GiB at the default chunk
// size), so a corrupt header cannot make a reader allocate without bound.
const MaxChunks = 1 << 14

// ErrCorrupt is returned for snapshot data that fails verification.
var ErrCorrupt = errors.New("corrupt snapshot")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeChunks splits payload into chunk record values of at most size
// bytes each.
func encodeChunks(version int64, payload []byte, size int) [][]byte {
	body := size - chunkHeader
	total := (len(payload) + body - 1) / body
	if total == 0 {
		total = 1
	}
	out := make([][]byte, 0, total)
	for i := 0; i < total; i++ {
		part := payload[min(i*body, len(payload)):min((i+1)*body, len(payload))]
		b := make([]byte, 0, chunkHeader+len(part))
		b = append(b, chunkMagic...)
		b = binary.BigEndian.AppendUint64(b, uint64(version))
		b = binary.BigEndian.AppendUint32(b, uint32(i))
		b = binary.BigEndian.AppendUint32(b, uint32(total))
		crc := crc32.Update(crc32.Checksum(b, castagnoli), castagnoli, part)
		b = binary.BigEndian.AppendUint32(b, crc)
		out = append(out, append(b, part...))
	}
	return out
}

// chunk is one decoded, CRC-verified chunk.
type chunk struct {
	version      int64
	index, total int
	data         []byte
}

func decodeChunk(b []byte) (chunk, error) {
	if len(b) < chunkHeader || !bytes.Equal(b[:4], chunkMagic) {
		return chunk{}, fmt.Errorf("%w: not a snapshot chunk", ErrCorrupt)
	}
	c := chunk{
		version: int64(binary.BigEndian.Uint64(b[4:])),
		index:   int(binary.BigEndian.Uint32(b[12:])),
		total:   int(binary.BigEndian.Uint32(b[16:])),
		data:    b[chunkHeader:],
	}
	if crc32.Update(crc32.Checksum(b[:20], castagnoli), castagnoli, c.data) != binary.BigEndian.Uint32(b[20:]) {
		return chunk{}, fmt.Errorf("%w: chunk %d of version %d fails its CRC", ErrCorrupt, c.index, c.version)
	}
	if c.index >= c.total || c.total > MaxChunks {
		return chunk{}, fmt.Errorf("%w: chunk index %d of %d (at most %d chunks)", ErrCorrupt, c.index, c.total, MaxChunks)
	}
	return c, nil
}

func checksum(payload []byte) string {
	s := sha256.Sum256(payload)
	return hex.EncodeToString(s[:])
}

// encodePayload serialises a delta (rows in enc) and compresses it.
func encodePayload(d *Delta, enc Encoding) ([]byte, error) {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(d.IDs)))
	for _, id := range d.IDs {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	for i := range d.IDs {
		b = enc.appendRow(b, d.Row(i))
	}
	b = binary.AppendUvarint(b, uint64(len(d.Deleted)))
	for _, id := range d.Deleted {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Tasks)))
	names := slices.Sorted(maps.Keys(d.Tasks))
	for _, name := range names {
		tp := d.Tasks[name]
		b = appendString(b, name)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(tp.Bias))
		for _, v := range append(slices.Clone(tp.Scale), tp.Shift...) {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.Items)))
	for _, it := range d.Items {
		ex := stream.Example{ItemID: it.ID, Item: it.Meta}
		enc := stream.AppendExample(nil, &ex)
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	b = binary.AppendUvarint(b, uint64(len(d.Popular)))
	for _, task := range slices.Sorted(maps.Keys(d.Popular)) {
		list := d.Popular[task]
		b = appendString(b, task)
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, p := range list {
			b = appendString(b, p.Item)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Score))
		}
	}
	b = appendMemory(b, d, names)
	zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd encoder: %w", err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// chunkCRC returns the CRC32C stored in an encoded chunk's header.
func chunkCRC(b []byte) uint32 { return binary.BigEndian.Uint32(b[20:]) }
