package stream

import (
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
// accepts re-encodes to the same bytes.
func FuzzDecodeExample(f *testing.F) {
	f.Add(AppendExample(nil, &Example{Task: "t", Context: []Field{{"a", "b"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ex Example
		if DecodeExample(b, &ex) != nil {
			return
		}
		var again Example
		if err := DecodeExample(AppendExample(nil, &ex), &again); err != nil || !reflect.DeepEqual(normalize(ex), normalize(again)) {
			t.Fatalf("re-encoding changed the example: %v", err)
		}
	})
}

// normalize maps empty slices to nil so DeepEqual compares contents.
func normalize(e Example) Example {
	if len(e.Context) == 0 {
		e.Context = nil
	}
	if len(e.Item.Categories) == 0 {
		e.Item.Categories = nil
	}
	return e
}
