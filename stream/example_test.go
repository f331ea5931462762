package stream

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestExampleRoundTrip(t *testing.T) {
	in := Example{Task: "search", EventID: "e-1", RequestID: "r-1", ItemID: "m-1", Action: "play", EventTime: 1764237600120,
		Label: 1, Weight: 2, SampleProb: 0.25, Position: 3,
		Context: []Field{{"query", "space documentary"}, {"user_id", "u-7"}},
		Item:    ItemMeta{Type: "video", Title: "Cosmos", Categories: []string{"Documentary", "Science"}}}
	var out Example
	if err := DecodeExample(AppendExample(nil, &in), &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	b := AppendExample(nil, &in)
	for cut := 0; cut < len(b); cut++ {
		if err := DecodeExample(b[:cut], &out); !errors.Is(err, ErrBadExample) {
			t.Fatalf("truncated at %d: got %v, want ErrBadExample", cut, err)
		}
	}
}

// FuzzDecodeExample: no input makes the decoder panic, and whatever it
// accepts re-encodes to bytes that decode and encode again to the same
// bytes (NaN labels included, which DeepEqual cannot compare).
func FuzzDecodeExample(f *testing.F) {
	f.Add(AppendExample(nil, &Example{Task: "t", Context: []Field{{"a", "b"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ex Example
		if DecodeExample(b, &ex) != nil {
			return
		}
		enc := AppendExample(nil, &ex)
		var again Example
		if err := DecodeExample(enc, &again); err != nil {
			t.Fatalf("re-encoded example does not decode: %v", err)
		}
		if !bytes.Equal(enc, AppendExample(nil, &again)) {
			t.Fatalf("re-encoding is not stable")
		}
	})
}
