package stream

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"unsafe"
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

// TestExampleDecoderSharesRecurringStrings: the cached decoder returns the
// same string for a recurring name or id (no allocation), a fresh one for
// event ids, and the right strings whatever evicts whom.
func TestExampleDecoderSharesRecurringStrings(t *testing.T) {
	dec := NewExampleDecoder()
	in := Example{Task: "search", EventID: "e-1", ItemID: "m-1", Context: []Field{{"user_id", "u-7"}}}
	b := AppendExample(nil, &in)
	var first, second Example
	if err := dec.Decode(b, &first); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(b, &second); err != nil {
		t.Fatal(err)
	}
	if unsafe.StringData(first.ItemID) != unsafe.StringData(second.ItemID) ||
		unsafe.StringData(first.Context[0].Value) != unsafe.StringData(second.Context[0].Value) {
		t.Errorf("a recurring item or user id was allocated again")
	}
	if unsafe.StringData(first.EventID) == unsafe.StringData(second.EventID) {
		t.Errorf("event ids went through the cache")
	}
	for i := range 4 * stringCacheSlots { // more ids than slots: every slot is replaced
		in.ItemID, in.Context[0].Value = fmt.Sprintf("item-%d", i), fmt.Sprintf("user-%d", i%97)
		var out Example
		if err := dec.Decode(AppendExample(nil, &in), &out); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("decoded %+v, want %+v", out, in)
		}
	}
}

// TestExampleDecoderReusesOnlyTheSameContext: the cached decoder takes the
// fields of the context before when the bytes begin with its encoding, so
// examples whose contexts differ by a field, by a value's length or last
// byte, or only after the first fields, a context too long to keep, an
// empty one, and an example cut off right after its context must all
// decode exactly as DecodeExample decodes them.
func TestExampleDecoderReusesOnlyTheSameContext(t *testing.T) {
	long := string(bytes.Repeat([]byte("q"), contextKeepMax))
	ctxs := [][]Field{
		{{"user_id", "u-7"}, {"query", "space"}},
		{{"user_id", "u-7"}, {"query", "space"}},
		{{"user_id", "u-7"}, {"query", "space"}, {"country", "US"}},
		{{"user_id", "u-7"}, {"query", "spacex"}},
		{{"user_id", "u-7"}, {"query", "spacf"}},
		{{"user_id", "u-7"}},
		nil,
		{{"user_id", "u-7"}, {"query", "space"}},
		{{"user_id", "u-7"}, {"query", long}},
		{{"user_id", "u-7"}, {"query", long}},
		{{"user_id", "u-7"}, {"query", "space"}},
	}
	dec := NewExampleDecoder()
	for i, ctx := range ctxs {
		in := Example{Task: "search", EventID: fmt.Sprint("e-", i), ItemID: fmt.Sprint("m-", i%3), Context: ctx,
			Item: ItemMeta{Type: "video", Categories: []string{"Drama"}}}
		b := AppendExample(nil, &in)
		var want, got Example
		if err := DecodeExample(b, &want); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(b, &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("example %d: decoded %+v (%v), want %+v", i, got, err, want)
		}
		noItem := in
		noItem.Item = ItemMeta{}
		enc := AppendExample(nil, &noItem)
		cut := enc[:len(enc)-3] // the empty type, title and categories dropped
		if err := dec.Decode(cut, &got); !errors.Is(err, ErrBadExample) {
			t.Fatalf("example %d cut after its context: got %v, want ErrBadExample", i, err)
		}
	}
}

// FuzzDecodeExample: no input makes the decoder panic, and whatever it
// accepts re-encodes to bytes that decode and encode again to the same
// bytes (NaN labels included, which DeepEqual cannot compare).
// The cached decoder, shared by every input, decodes exactly the same.
func FuzzDecodeExample(f *testing.F) {
	f.Add(AppendExample(nil, &Example{Task: "t", Context: []Field{{"a", "b"}}}))
	dec := NewExampleDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		var ex, cached Example
		err := DecodeExample(b, &ex)
		if cerr := dec.Decode(b, &cached); (err == nil) != (cerr == nil) {
			t.Fatalf("DecodeExample: %v, the cached decoder: %v", err, cerr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(AppendExample(nil, &ex), AppendExample(nil, &cached)) {
			t.Fatalf("the cached decoder decoded %+v, DecodeExample %+v", cached, ex)
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
