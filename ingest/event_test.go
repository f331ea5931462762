package ingest

import (
	"strings"
	"testing"
)

// FuzzDecodeEvent: no input makes event validation panic, and every event
// it rejects gets one of the documented reasons.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"event_id":"e-1","time":"2026-11-27T10:00:00.120Z","canvas":"search","action":"impression","request_id":"r-77","item_id":"m-603","position":2,"context":{"user_id":"u-7","query":"space documentary"}}`))
	f.Add([]byte(`{"event_id":"e","time":"2026-11-27T10:00:00Z","canvas":"notifications","action":"click","item_id":"m","context":{"user_id":1}}`))
	reg, err := NewRegistry(DefaultCanvases())
	if err != nil {
		f.Fatal(err)
	}
	known := map[string]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, rej := DecodeEvent(b, 4096)
		if rej == nil {
			rej = reg.Check(e)
		}
		if rej == nil {
			reg.Normalize(e)
			return
		}
		if !known[rej.Reason] || rej.Detail == "" {
			t.Fatalf("rejection %+v has no documented reason or no detail", rej)
		}
	})
}

func TestCanvasConfigErrorsNameTheField(t *testing.T) {
	f := func(mutate func(c *Canvas), want string) {
		t.Helper()
		cs := DefaultCanvases()
		mutate(&cs[0])
		_, err := NewRegistry(cs)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error naming %q", err, want)
		}
	}
	f(func(c *Canvas) { c.Name = "" }, "canvases[].name")
	f(func(c *Canvas) { c.AttributionWindow = 0 }, "attribution_window")
	f(func(c *Canvas) { c.Actions = nil }, "actions")
	f(func(c *Canvas) { c.Actions["impression"] = Action{Weight: 1} }, `"impression" is implicit`)
	f(func(c *Canvas) { c.NegativeKeepRate = 2 }, "negative_keep_rate")
	f(func(c *Canvas) { c.Context = append(c.Context, c.Context[0]) }, "listed twice")
}
