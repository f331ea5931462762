package snapshot

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/stream"
)

// Manifest describes one snapshot. It is the last record of the snapshot's
// transaction; the chunks before it carry the payload.
type Manifest struct {
	ModelID     string                         `json:"model_id"`
	Version     int64                          `json:"version"`
	Kind        string                         `json:"kind"` // "full"
	BaseVersion int64                          `json:"base_version"`
	Config      online.ModelConfig             `json:"config"`
	Offsets     map[int32]int64                `json:"offsets"`   // examples partition -> next offset
	Watermark   time.Time                      `json:"watermark"` // newest event time included
	Applied     int64                          `json:"applied"`   // examples the model learned from
	Rows        int                            `json:"rows"`
	Items       int                            `json:"items"`
	Chunks      int                            `json:"chunks"`
	Bytes       int                            `json:"bytes"`    // compressed payload bytes
	Checksum    string                         `json:"checksum"` // sha256 of the compressed payload
	Created     time.Time                      `json:"created"`
	Progress    map[string]online.TaskProgress `json:"progress"`
}

// KindFull is a snapshot that holds the whole model.
const KindFull = "full"

// chunkMagic starts every chunk record.
var chunkMagic = []byte("URS1")

// chunkHeader is magic(4) version(8) index(4) total(4) crc32c(4); the CRC
// covers the header fields before it and the data.
const chunkHeader = 24

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
	if c.index >= c.total {
		return chunk{}, fmt.Errorf("%w: chunk index %d of %d", ErrCorrupt, c.index, c.total)
	}
	return c, nil
}

func checksum(payload []byte) string {
	s := sha256.Sum256(payload)
	return hex.EncodeToString(s[:])
}

// encodePayload serialises the model part of a capture and compresses it.
func encodePayload(c *online.Capture) ([]byte, error) {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(c.IDs)))
	for _, id := range c.IDs {
		b = binary.LittleEndian.AppendUint64(b, id)
	}
	for _, w := range c.Weights {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(w))
	}
	b = binary.AppendUvarint(b, uint64(len(c.Tasks)))
	for name, tp := range c.Tasks {
		b = appendString(b, name)
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(tp.Bias))
		for _, v := range append(append([]float32{}, tp.Scale...), tp.Shift...) {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(c.Items)))
	for _, it := range c.Items {
		ex := stream.Example{ItemID: it.ID, Item: it.Meta}
		enc := stream.AppendExample(nil, &ex)
		b = binary.AppendUvarint(b, uint64(len(enc)))
		b = append(b, enc...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Popular)))
	for task, list := range c.Popular {
		b = appendString(b, task)
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, p := range list {
			b = appendString(b, p.Item)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Score))
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return nil, fmt.Errorf("cannot create zstd encoder: %w", err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
