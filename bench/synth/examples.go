package synth

import (
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// Examples generates requests and labels their impressions directly, as the
// ingest join would: positive (weight 1) when the item was clicked, negative
// otherwise, in request order. It is for tests and benchmarks of the model
// without the Kafka pipeline.
func (w *World) Examples(reg *ingest.Registry, requests int) []stream.Example {
	var out []stream.Example
	for i := 0; i < requests; i++ {
		evs := w.Next()
		clicked := map[string]bool{}
		for _, e := range evs {
			if e.Action == "click" {
				clicked[e.ItemID] = true
			}
		}
		for _, e := range evs {
			if e.Action != ingest.ActionImpression {
				continue
			}
			ex := reg.Normalize(&e)
			ex.Weight = 1
			if clicked[e.ItemID] {
				ex.Label = 1
			}
			out = append(out, ex)
		}
	}
	return out
}
