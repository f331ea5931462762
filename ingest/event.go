package ingest

import (
	"fmt"
	"time"

	"github.com/unirec/unirec/stream"
)

// Event is one interaction event as produced to the events topic, one JSON
// object per record. See the README for every field.
type Event struct {
	EventID   string            `json:"event_id"`
	Time      time.Time         `json:"time"`
	Canvas    string            `json:"canvas"`
	Action    string            `json:"action"`
	RequestID string            `json:"request_id"`
	ItemID    string            `json:"item_id"`
	Position  *int32            `json:"position"`
	Context   map[string]string `json:"context"`
	// Item optionally carries the item's metadata inline.
	Item *stream.ItemMeta `json:"item"`
}

// Dead-letter reasons. Each is a label value of the dead-letter metric and
// the unirec.reason header of the dead-letter record.
const (
	ReasonBadJSON       = "bad_json"
	ReasonTooLarge      = "too_large"
	ReasonUnknownCanvas = "unknown_canvas"
	ReasonUnknownAction = "unknown_action"
	ReasonMissingField  = "missing_field"
	ReasonLate          = "late"
	// ReasonFuture: the event's time is later than the ingest's wall clock
	// plus Options.MaxFutureSkew; accepted, it would become its
	// partition's watermark and make every later event late.
	ReasonFuture = "future"
)

// Reasons lists every dead-letter reason.
var Reasons = []string{ReasonBadJSON, ReasonTooLarge, ReasonUnknownCanvas, ReasonUnknownAction, ReasonMissingField, ReasonLate, ReasonFuture}

// Rejection says why an event cannot become an example.
type Rejection struct {
	Reason string // one of the Reason constants
	Detail string // names the offending field or value
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Detail }

func reject(reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
