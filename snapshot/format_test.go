package snapshot

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

func testCapture() *model.Capture {
	cfg := model.DefaultModelConfig()
	cfg.Dim = 4
	return &model.Capture{
		Config: cfg, Version: 3, Offsets: map[int32]int64{0: 42}, Watermark: 1700000000000, Applied: 42,
		IDs:     []uint64{1, 99},
		Weights: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		Tasks: map[string]model.TaskParams{
			"search":        {Scale: []float32{1, 1, 1, 1}, Shift: []float32{0, 0.5, 0, 0}, Bias: -1},
			"notifications": {Scale: []float32{2, 1, 1, 1}, Shift: []float32{0, 0, 0, 0.25}, Bias: 1},
		},
		Items:   []model.Item{{ID: "m-1", Meta: stream.ItemMeta{Type: "video", Title: "Space", Categories: []string{"Documentary"}}}, {ID: "m-2"}},
		Popular: map[string][]model.Popular{"search": {{Item: "m-1", Score: 3}}},
	}
}

func manifestFor(c *model.Capture, d *Delta, enc Encoding, payload []byte) *Manifest {
	return &Manifest{Version: c.Version, Config: c.Config, Encoding: enc, Rows: len(d.IDs), Deleted: len(d.Deleted),
		Tasks: len(d.Tasks), Items: len(d.Items), Memory: len(d.Memory), Checksum: checksum(payload)}
}

// roundTrip encodes d and decodes it again.
func roundTrip(t *testing.T, c *model.Capture, d *Delta, enc Encoding) *Delta {
	t.Helper()
	payload, err := encodePayload(d, enc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodePayload(manifestFor(c, d, enc, payload), payload)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A float32 payload decodes to exactly the model it was encoded from.
func TestPayloadRoundTrip(t *testing.T) {
	c := testCapture()
	got := Apply(&model.Capture{Config: c.Config}, roundTrip(t, c, Diff(nil, c), EncodingFloat32))
	want := *c
	want.Version, want.Offsets, want.Watermark, want.Applied = 0, nil, 0, 0
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, &want)
	}
}

// The compact encodings stay within their quantisation error: half a unit
// in the last place for float16, half a step of max|w|/127 for int8; the
// bias is exact.
func TestCompactEncodingsBoundError(t *testing.T) {
	c := testCapture()
	c.Weights = []float32{0.013, -0.25, 1e-5, 3.75, 0.4, -0.001, 0.002, 0.1, -0.05, -7}
	f := func(enc Encoding, bound func(w, rowMax float32) float64) {
		t.Helper()
		d := roundTrip(t, c, Diff(nil, c), enc)
		for r := range d.IDs {
			row, want := d.Row(r), c.Weights[r*5:(r+1)*5]
			var rowMax float32
			for _, v := range want[:4] {
				rowMax = max(rowMax, float32(math.Abs(float64(v))))
			}
			for i, v := range row {
				b := 0.0
				if i < 4 {
					b = bound(want[i], rowMax)
				}
				if e := math.Abs(float64(v - want[i])); e > b {
					t.Errorf("%s: row %d weight %d: got %g want %g (error %g > %g)", enc, r, i, v, want[i], e, b)
				}
			}
		}
	}
	f(EncodingFloat16, func(w, _ float32) float64 { return math.Max(math.Abs(float64(w))/2048, 1.0/(1<<25)) })
	f(EncodingInt8, func(_, m float32) float64 { return float64(m) / 127 / 2 * 1.0001 })
}

// float16 conversion matches exact cases and preserves specials.
func TestHalf(t *testing.T) {
	for _, v := range []float32{0, 1, -2, 0.5, 65504, 6.1035156e-05, 5.9604645e-08, float32(math.Inf(1))} {
		if got := fromHalf(toHalf(v)); got != v {
			t.Errorf("%g -> %g", v, got)
		}
	}
	if !math.IsNaN(float64(fromHalf(toHalf(float32(math.NaN()))))) {
		t.Error("NaN is not preserved")
	}
	if got := fromHalf(toHalf(1e6)); !math.IsInf(float64(got), 1) {
		t.Errorf("overflow gives %g, want +Inf", got)
	}
}

// trainChain trains a real trainer on a synthetic world in steps and
// captures the model after each step.
func trainChain(t *testing.T, steps, perStep int) []*model.Capture {
	t.Helper()
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	cfg := model.DefaultModelConfig()
	cfg.Dim = 8
	tr, err := online.OpenTrainer(online.TrainerOptions{Model: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	exs := synth.NewWorld(synth.Options{Seed: 5}).Examples(reg, steps*perStep)
	var out []*model.Capture
	for s := 0; s < steps; s++ {
		n := len(exs) / steps
		for i := s * n; i < (s+1)*n; i++ {
			tr.Apply(&exs[i])
		}
		c, err := tr.Capture()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// A full snapshot followed by deltas, each encoded and decoded, leads to
// exactly the model that a full snapshot of the last capture holds, in
// every encoding; and each delta holds only the rows that changed.
func TestDeltaChainEqualsFull(t *testing.T) {
	caps := trainChain(t, 6, 40)
	last := caps[len(caps)-1]
	for _, enc := range []Encoding{EncodingFloat32, EncodingFloat16, EncodingInt8} {
		chain := Apply(&model.Capture{Config: last.Config}, roundTrip(t, caps[0], Diff(nil, caps[0]), enc))
		for i := 1; i < len(caps); i++ {
			d := Diff(caps[i-1], caps[i])
			if len(d.IDs) == 0 || len(d.IDs) >= len(caps[i].IDs) {
				t.Fatalf("delta %d has %d of %d rows: not a delta", i, len(d.IDs), len(caps[i].IDs))
			}
			chain = Apply(chain, roundTrip(t, caps[i], d, enc))
		}
		full := Apply(&model.Capture{Config: last.Config}, roundTrip(t, last, Diff(nil, last), enc))
		if !reflect.DeepEqual(chain, full) {
			t.Fatalf("%s: chain of deltas differs from the full snapshot (%d vs %d rows)", enc, len(chain.IDs), len(full.IDs))
		}
	}
	exact := Apply(&model.Capture{Config: last.Config}, Diff(nil, last))
	if !reflect.DeepEqual(exact.IDs, last.IDs) || !reflect.DeepEqual(exact.Weights, last.Weights) ||
		!reflect.DeepEqual(exact.Items, last.Items) || !reflect.DeepEqual(exact.Tasks, last.Tasks) ||
		len(last.Memory) == 0 || !reflect.DeepEqual(exact.Memory, last.Memory) {
		t.Fatal("a full delta does not reproduce the capture")
	}
}

// A delta carries only the memory lists that changed, and the keys of the
// lists that disappeared; applied to its base it gives the new lists.
func TestDeltaCarriesChangedMemoryLists(t *testing.T) {
	a, b := testCapture(), testCapture()
	a.Memory = []model.MemoryList{{Key: 1, Items: []model.MemoryItem{{Item: "m-1", Count: 2}}},
		{Key: 5, Items: []model.MemoryItem{{Item: "m-2", Count: 1}}}, {Key: 9, Ref: 3, Items: []model.MemoryItem{{Item: "m-1", Count: 1}}}}
	b.Memory = []model.MemoryList{a.Memory[0], {Key: 7, Items: []model.MemoryItem{{Item: "m-2", Count: 4}}},
		{Key: 9, Ref: 3, Items: []model.MemoryItem{{Item: "m-1", Count: 1.5}}}}
	d := roundTrip(t, b, Diff(a, b), EncodingFloat32)
	if keys := []uint64{d.Memory[0].Key, d.Memory[1].Key}; len(d.Memory) != 2 || !reflect.DeepEqual(keys, []uint64{7, 9}) ||
		!reflect.DeepEqual(d.MemoryDeleted, []uint64{5}) {
		t.Fatalf("delta carries lists %v and deletes %v, want lists 7 and 9, deleting 5", d.Memory, d.MemoryDeleted)
	}
	if got := Apply(a, d); !reflect.DeepEqual(got.Memory, b.Memory) {
		t.Fatalf("applied lists %v, want %v", got.Memory, b.Memory)
	}
}

// Rows that disappear from the model (evicted) are deleted by the delta.
func TestDeltaDeletesRows(t *testing.T) {
	a := testCapture()
	b := testCapture()
	b.IDs, b.Weights = []uint64{99, 100}, []float32{6, 7, 8, 9, 10, 0, 0, 0, 0, 1}
	d := Diff(a, b)
	if !reflect.DeepEqual(d.Deleted, []uint64{1}) || !reflect.DeepEqual(d.IDs, []uint64{100}) {
		t.Fatalf("got deleted %v changed %v", d.Deleted, d.IDs)
	}
	got := Apply(a, d)
	if !reflect.DeepEqual(got.IDs, b.IDs) || !reflect.DeepEqual(got.Weights, b.Weights) {
		t.Fatalf("got %v %v", got.IDs, got.Weights)
	}
}

// Flipping any byte of a chunk is caught by its CRC, and a payload that
// does not match the manifest's checksum is rejected.
func TestCorruptionIsRejected(t *testing.T) {
	c := testCapture()
	d := Diff(nil, c)
	payload, _ := encodePayload(d, EncodingFloat32)
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
	m := manifestFor(c, d, EncodingFloat32, payload)
	payload[len(payload)/2] ^= 1
	if _, err := decodePayload(m, payload); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered payload: got %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeChunk: no input makes the chunk or payload decoder panic.
func FuzzDecodeChunk(f *testing.F) {
	c := testCapture()
	for _, enc := range []Encoding{EncodingFloat32, EncodingInt8} {
		payload, _ := encodePayload(Diff(nil, c), enc)
		for _, ch := range encodeChunks(1, payload, 100) {
			f.Add(ch, string(enc))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, enc string) {
		if ch, err := decodeChunk(b); err == nil {
			m := &Manifest{Config: c.Config, Encoding: Encoding(enc), Checksum: checksum(ch.data)}
			decodePayload(m, ch.data)
		}
	})
}

// FuzzAssembly: no sequence of records (chunks, manifests, junk) makes the
// assembler panic or allocate without bound, and what it completes passes
// the manifest's checks.
func FuzzAssembly(f *testing.F) {
	c := testCapture()
	payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
	chunks := encodeChunks(c.Version, payload, 100)
	f.Add(chunks[0], chunks[1], []byte(`{"version":3,"chunks":2}`))
	f.Add([]byte("URS1"), []byte{}, []byte(`{}`))
	f.Fuzz(func(t *testing.T, a, b, manifest []byte) {
		var asm assembly
		for _, v := range [][]byte{a, b} {
			asm.add(&kgo.Record{Key: []byte("chunk/0"), Value: v}, nil)
		}
		m, p, err := asm.add(&kgo.Record{Key: []byte(manifestKey), Value: manifest}, nil)
		if err == nil && (m == nil || m.Chunks != len(m.ChunkCRCs)) {
			t.Fatalf("completed %+v with %d bytes", m, len(p))
		}
	})
}
