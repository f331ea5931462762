package snapshot

import (
	"errors"
	"reflect"
	"testing"

	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/stream"
)

func testCapture() *online.Capture {
	cfg := online.DefaultModelConfig()
	cfg.Dim = 4
	return &online.Capture{
		Config: cfg, Version: 3, Offsets: map[int32]int64{0: 42}, Watermark: 1700000000000, Applied: 42,
		IDs:     []uint64{1, 99},
		Weights: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		Tasks: map[string]online.TaskParams{
			"search":        {Scale: []float32{1, 1, 1, 1}, Shift: []float32{0, 0.5, 0, 0}, Bias: -1},
			"notifications": {Scale: []float32{2, 1, 1, 1}, Shift: []float32{0, 0, 0, 0.25}, Bias: 1},
		},
		Items:   []online.Item{{ID: "m-1", Meta: stream.ItemMeta{Type: "video", Title: "Space", Categories: []string{"Documentary"}}}, {ID: "m-2"}},
		Popular: map[string][]online.Popular{"search": {{Item: "m-1", Score: 3}}},
	}
}

func manifestFor(c *online.Capture, payload []byte) *Manifest {
	return &Manifest{Version: c.Version, Config: c.Config, Offsets: c.Offsets, Watermark: unixMilli(c.Watermark),
		Applied: c.Applied, Rows: len(c.IDs), Items: len(c.Items), Checksum: checksum(payload)}
}

// A payload decodes to exactly the capture it was encoded from.
func TestPayloadRoundTrip(t *testing.T) {
	c := testCapture()
	payload, err := encodePayload(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePayload(manifestFor(c, payload), payload)
	if err != nil {
		t.Fatal(err)
	}
	got.Progress = c.Progress
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, c)
	}
}

// Flipping any byte of a chunk is caught by its CRC, and a payload that
// does not match the manifest's checksum is rejected.
func TestCorruptionIsRejected(t *testing.T) {
	c := testCapture()
	payload, _ := encodePayload(c)
	chunks := encodeChunks(c.Version, payload, 64)
	if len(chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(chunks))
	}
	for i := range chunks[0] {
		bad := append([]byte(nil), chunks[0]...)
		bad[i] ^= 0x40
		if _, err := decodeChunk(bad); err == nil && i >= 4 {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	m := manifestFor(c, payload)
	payload[len(payload)/2] ^= 1
	if _, err := decodePayload(m, payload); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered payload: got %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeChunk: no input makes the chunk decoder panic.
func FuzzDecodeChunk(f *testing.F) {
	c := testCapture()
	payload, _ := encodePayload(c)
	for _, ch := range encodeChunks(1, payload, 100) {
		f.Add(ch)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, err := decodeChunk(b); err == nil {
			decodePayload(&Manifest{Config: c.Config, Checksum: checksum(ch.data)}, ch.data)
		}
	})
}
