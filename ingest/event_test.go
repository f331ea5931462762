package ingest

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestCanvasConfigErrorsNameTheField(t *testing.T) {
	c0 := DefaultCanvases()[0].Name
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
	f(func(c *Canvas) { c.NegativeKeepRate = math.NaN() }, "negative_keep_rate")
	for _, w := range []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 2 * MaxWeight} {
		f(func(c *Canvas) { c.Weight = w }, fmt.Sprintf("canvases[%s].weight must be in (0, 1e+06], got %v", c0, w))
		f(func(c *Canvas) { c.Actions["click"] = Action{Positive: true, Weight: w} }, fmt.Sprintf("canvases[%s].actions[click].weight", c0))
	}
	f(func(c *Canvas) { c.Context = append(c.Context, c.Context[0]) }, "listed twice")
}
