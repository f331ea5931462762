package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// decodeStd is the reference: encoding/json into Event, then the same shape
// checks.
func decodeStd(b []byte) (*Event, *Rejection) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, reject(ReasonBadJSON, "%v", err)
	}
	return &e, checkShape(&e)
}

// sameEvent compares two decoded events field by field (nil and empty
// collections are equal, times must be the same instant and offset).
func sameEvent(a, b *Event) string {
	if a.EventID != b.EventID || a.Canvas != b.Canvas || a.Action != b.Action || a.RequestID != b.RequestID || a.ItemID != b.ItemID {
		return fmt.Sprintf("strings differ: %q %q %q %q %q vs %q %q %q %q %q",
			a.EventID, a.Canvas, a.Action, a.RequestID, a.ItemID, b.EventID, b.Canvas, b.Action, b.RequestID, b.ItemID)
	}
	if !a.Time.Equal(b.Time) || a.Time.Format(time.RFC3339Nano) != b.Time.Format(time.RFC3339Nano) {
		return fmt.Sprintf("time %v vs %v", a.Time, b.Time)
	}
	if (a.Position == nil) != (b.Position == nil) || (a.Position != nil && *a.Position != *b.Position) {
		return "position differs"
	}
	if len(a.Context) != len(b.Context) {
		return fmt.Sprintf("context %v vs %v", a.Context, b.Context)
	}
	for k, v := range a.Context {
		if w, ok := b.Context[k]; !ok || w != v {
			return fmt.Sprintf("context %v vs %v", a.Context, b.Context)
		}
	}
	if (a.Item == nil) != (b.Item == nil) {
		return "item presence differs"
	}
	if a.Item != nil {
		x, y := a.Item, b.Item
		if x.Type != y.Type || x.Title != y.Title || strings.Join(x.Categories, "\x00") != strings.Join(y.Categories, "\x00") || len(x.Categories) != len(y.Categories) {
			return fmt.Sprintf("item %+v vs %+v", *x, *y)
		}
	}
	return ""
}

var decodeSeeds = []string{
	`{"event_id":"e-1","time":"2026-11-27T10:00:00.120Z","canvas":"search","action":"impression","request_id":"r-77","item_id":"m-603","position":2,"context":{"user_id":"u-7","query":"space documentary"}}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"notifications","action":"click","item_id":"m","context":{"user_id":1}}`,
	`{"EVENT_ID":"e","Time":"2026-11-27T10:00:00+02:00","canvas":"n","action":"a","item_id":"m","item":{"type":"video","Title":"caf\u00e9","categories":["a",null]},"extra":[1,{"x":[true,false,null]},-0.5e+3]}`,
	`{"event_id":"e","event_id":"f","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m"}`,
	`{"event_id":"e\ud800","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m","position":-0,"context":null,"item":null}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00\u005a","canvas":"n","action":"a","item_id":"m"}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m","position":1.0}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m","position":2147483648}`,
	`{"ſtem":{"type":"x"},"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m"} `,
	// Folding: encoding/json matches keys with bytes.EqualFold (simple
	// folding), so "poſition" (long s) is position, "ıtem_id" (dotless i)
	// and "İtem_id" are no field, and the Kelvin sign folds with k.
	`{"ıtem_id":"x","event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m"}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","ıtem_id":"m"}`,
	`{"event_ıd":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","İtem_id":"m","poſition":3}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m","item":{"tıtle":"t","categorieſ":["a"],"K":1}}`,
	`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","item_id":"m","Kontext":{"user_id":"u"}}`,
	`null`, `[]`, `"x"`, `{}`, `{"a":1}}`, `{"context":{"a":"b","a":null}}`, "\xff", `{"event_id":"\xff\xfe"}`,
}

// FuzzDecodeEvent holds the fast decoder to encoding/json: the same events
// are accepted with the same values, the same are rejected with the same
// reason. The one documented difference (a field given twice is rejected)
// is exempt. Every rejection has a documented reason and a detail.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	reg, err := NewRegistry(DefaultCanvases())
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	dec := NewEventDecoder()
	f.Fuzz(func(t *testing.T, b []byte) {
		got, rej := dec.Decode(b, 1<<20)
		if rej != nil && (!known[rej.Reason] || rej.Detail == "") {
			t.Fatalf("rejection %+v has no documented reason or no detail", rej)
		}
		if rej != nil && strings.Contains(rej.Detail, "is given twice") {
			return
		}
		want, wantRej := decodeStd(b)
		switch {
		case (rej == nil) != (wantRej == nil):
			t.Fatalf("fast: %v, encoding/json: %v", rej, wantRej)
		case rej != nil && rej.Reason != wantRej.Reason:
			t.Fatalf("fast: %v, encoding/json: %v", rej, wantRej)
		case rej == nil:
			if d := sameEvent(got, want); d != "" {
				t.Fatalf("values differ: %s", d)
			}
			if reg.Check(got) == nil {
				reg.Normalize(got)
			}
		}
	})
}

// Rejections name the problem: the field, the type, where the JSON breaks.
func TestDecodeEventDetails(t *testing.T) {
	f := func(in, reason, detail string) {
		t.Helper()
		_, rej := DecodeEvent([]byte(in), 1024)
		if rej == nil || rej.Reason != reason || !strings.Contains(rej.Detail, detail) {
			t.Errorf("%s: got %v, want %s naming %q", in, rej, reason, detail)
		}
	}
	f(`{"event_id":7}`, ReasonBadJSON, "event_id must be a string, got number")
	f(`{"event_id":"e","position":"2"}`, ReasonBadJSON, "position must be an integer, got string")
	f(`{"event_id":"e","position":2.5}`, ReasonBadJSON, "position must be a 32-bit integer, got 2.5")
	f(`{"context":{"user_id":["u"]}}`, ReasonBadJSON, "context.user_id must be a string, got array")
	f(`{"item":{"categories":"Drama"}}`, ReasonBadJSON, "item.categories must be an array of strings, got string")
	f(`{"time":"yesterday"}`, ReasonBadJSON, "time: parsing time")
	f(`{"event_id":"e",}`, ReasonBadJSON, "invalid JSON at byte 16")
	f(`{"event_id":"e"`, ReasonBadJSON, "unexpected end of JSON input")
	f(`{"canvas":"a","canvas":"b"}`, ReasonBadJSON, `field "canvas" is given twice`)
	f(`[1]`, ReasonBadJSON, "an event must be a JSON object, got array")
	f(`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a"}`, ReasonMissingField, "item_id is required")
	f(`{"event_id":"e","time":null,"canvas":"n","action":"a","item_id":"m"}`, ReasonMissingField, "time is required")
	f(strings.Repeat(" ", 1025), ReasonTooLarge, "1025 bytes, limit is 1024")
}

// The decoder reuses its Event, but strings it returned stay intact.
func TestDecoderReuseKeepsStrings(t *testing.T) {
	dec := NewEventDecoder()
	a, _ := dec.Decode([]byte(decodeSeeds[0]), 1024)
	id, ctx := a.EventID, a.Context["query"]
	if _, rej := dec.Decode([]byte(strings.ReplaceAll(decodeSeeds[0], "e-1", "e-2")), 1024); rej != nil {
		t.Fatal(rej)
	}
	if id != "e-1" || ctx != "space documentary" {
		t.Errorf("strings of the previous event changed: %q %q", id, ctx)
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	ev := []byte(`{"event_id":"e-1021","time":"2026-01-01T00:00:14.6Z","canvas":"search","action":"impression","request_id":"r-146","item_id":"m-112","position":3,"context":{"country":"FR","device":"tv","language":"fr","query":"galaxy robot","user_id":"u-187"},"item":{"type":"video","title":"Galaxy Robot Zeta","categories":["Sci-Fi"]}}`)
	b.Run("fast", func(b *testing.B) {
		dec := NewEventDecoder()
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			if _, rej := dec.Decode(ev, 1<<16); rej != nil {
				b.Fatal(rej)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(ev)))
		for b.Loop() {
			var e Event
			d := json.NewDecoder(bytes.NewReader(ev))
			if err := d.Decode(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Every key that differs from a field name by one rune of its case-folding
// orbit, its upper, lower or title case, or a rune known to trip folding
// (dotless i, dotted I, long s, Kelvin sign, Angstrom sign) is matched, or
// not, exactly as encoding/json matches it.
func TestKeyFoldingAgreesWithEncodingJSON(t *testing.T) {
	base := `{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"n","action":"a","request_id":"r","item_id":"m","position":1,` +
		`"context":{"user_id":"u"},"item":{"type":"video","title":"t","categories":["c"]}}`
	special := []rune{'ı', 'İ', 'ſ', 'K', 'Å', 'ß', 'ẞ'}
	check := func(in string) {
		t.Helper()
		got, rej := DecodeEvent([]byte(in), 1<<16)
		want, wantRej := decodeStd([]byte(in))
		switch {
		case (rej == nil) != (wantRej == nil) || (rej != nil && rej.Reason != wantRej.Reason):
			t.Errorf("%s: fast %v, encoding/json %v", in, rej, wantRej)
		case rej == nil:
			if d := sameEvent(got, want); d != "" {
				t.Errorf("%s: %s", in, d)
			}
		}
	}
	names := []string{}
	for _, f := range eventFields {
		names = append(names, f.name)
	}
	for _, f := range itemFields {
		names = append(names, f.name)
	}
	n := 0
	for _, name := range names {
		for i, c := range name {
			variants := append([]rune{unicode.ToUpper(c), unicode.ToLower(c), unicode.ToTitle(c)}, special...)
			for r := unicode.SimpleFold(c); r != c; r = unicode.SimpleFold(r) {
				variants = append(variants, r)
			}
			for _, v := range variants {
				key := name[:i] + string(v) + name[i+utf8.RuneLen(c):]
				check(strings.Replace(base, `"`+name+`":`, `"`+key+`":`, 1))
				n++
			}
		}
	}
	if n < 500 {
		t.Fatalf("only %d variants checked", n)
	}
}
