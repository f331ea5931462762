package ingest

import (
	"github.com/unirec/unirec/stream"
)

// Check validates an event against its canvas' configuration: a known
// canvas, a configured action, the canvas' required context fields, and a
// request id on impressions (their join key).
func (r *Registry) Check(e *Event) *Rejection {
	c := r.canvases[e.Canvas]
	if c == nil {
		return reject(ReasonUnknownCanvas, "canvas %q is not configured (known: %v)", e.Canvas, r.Names())
	}
	if _, ok := c.Actions[e.Action]; !ok && e.Action != ActionImpression {
		return reject(ReasonUnknownAction, "action %q is not configured for canvas %q", e.Action, e.Canvas)
	}
	if e.Action == ActionImpression && c.EngagementOnly {
		return reject(ReasonUnknownAction, "canvas %q is engagement_only: it takes no impressions", e.Canvas)
	}
	if e.Action == ActionImpression && e.RequestID == "" {
		return reject(ReasonMissingField, "request_id is required on impressions")
	}
	for _, f := range c.Context {
		if f.Required && e.Context[f.Name] == "" {
			return reject(ReasonMissingField, "context.%s is required for canvas %q", f.Name, e.Canvas)
		}
	}
	return nil
}

// Normalize builds the example of e with the unified request context: every
// field of the union, in schema order, with the canvas' value or the
// sentinel default. Context fields outside the schema are dropped.
func (r *Registry) Normalize(e *Event) stream.Example { return r.normalize(e, nil) }

// normalize is Normalize reusing prev, the context of a previous example,
// when e's unified context is the same: the events of one request share one
// slice (a context is never modified once built).
func (r *Registry) normalize(e *Event, prev []stream.Field) stream.Example {
	ctx := prev
	if !r.sameContext(e, prev) {
		ctx = make([]stream.Field, len(r.fields))
		for i, name := range r.fields {
			ctx[i] = stream.Field{Name: name, Value: r.value(e, name)}
		}
	}
	pos := int32(-1)
	if e.Position != nil {
		pos = *e.Position
	}
	ex := stream.Example{
		Task:      e.Canvas,
		EventID:   e.EventID,
		RequestID: e.RequestID,
		ItemID:    e.ItemID,
		Action:    e.Action,
		EventTime: e.Time.UnixMilli(),
		Position:  pos,
		Context:   ctx,
	}
	if e.Item != nil {
		ex.Item = *e.Item
	}
	return ex
}

// value is the unified context value of a field for e.
func (r *Registry) value(e *Event, name string) string {
	if v := e.Context[name]; v != "" {
		return v
	}
	return r.defaults[name]
}

// sameContext says whether ctx is e's unified context.
func (r *Registry) sameContext(e *Event, ctx []stream.Field) bool {
	if len(ctx) != len(r.fields) {
		return false
	}
	for i, name := range r.fields {
		if ctx[i].Value != r.value(e, name) {
			return false
		}
	}
	return true
}
