package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
)

// The answer of POST /v1/recommend, written without reflection: the bytes
// encoding/json writes for a Response (TestResponseEncodingIsEncodingJSONs
// holds the two together), appended to a pooled buffer and sent in one
// write with its length. encoding/json spent 50-60 us a request on a
// 100-item answer and sent it chunked (bench/README.md, "Serving: the
// answer path").

// respBufs holds answer buffers between requests.
var respBufs = sync.Pool{New: func() any { return new([]byte) }}

// writeResponse sends resp as the 200 answer of a recommend request, or
// a 500 naming the item when a score is not a number JSON can carry
// (encoding/json would send an empty 200).
func writeResponse(w http.ResponseWriter, resp *Response) {
	bp := respBufs.Get().(*[]byte)
	b, ok := resp.appendJSON((*bp)[:0])
	if !ok {
		aerr := nonFiniteScore(resp)
		writeJSON(w, aerr.Status, aerr)
	} else {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	}
	if cap(b) <= 1<<20 {
		*bp = b
		respBufs.Put(bp)
	}
}

// appendJSON appends resp as encoding/json's Encoder writes it, newline
// included; ok is false when a score is NaN or infinite (not JSON).
func (resp *Response) appendJSON(b []byte) (_ []byte, ok bool) {
	b = append(b, `{"items":`...)
	if resp.Items == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, it := range resp.Items {
			if math.IsNaN(it.Score) || math.IsInf(it.Score, 0) {
				return b, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, it.ID)
			b = append(b, `,"score":`...)
			b = appendFloat(b, it.Score)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	m := &resp.Model
	b = append(b, `,"model":{"version":`...)
	b = strconv.AppendInt(b, m.Version, 10)
	if m.Watermark != "" {
		b = append(b, `,"watermark":`...)
		b = appendString(b, m.Watermark)
	}
	b = append(b, `,"staleness_ms":`...)
	b = strconv.AppendInt(b, m.StalenessMS, 10)
	b = append(b, `,"stale":`...)
	b = strconv.AppendBool(b, m.Stale)
	f := &resp.Fallback
	b = append(b, `},"fallback":{"used":`...)
	b = strconv.AppendBool(b, f.Used)
	if f.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, f.Reason)
	}
	if f.Source != "" {
		b = append(b, `,"source":`...)
		b = appendString(b, f.Source)
	}
	b = append(b, `},"cached":`...)
	b = strconv.AppendBool(b, resp.Cached)
	b = append(b, `,"timing":{"total_us":`...)
	b = strconv.AppendInt(b, resp.Timing.TotalUS, 10)
	b = append(b, `,"queue_us":`...)
	b = strconv.AppendInt(b, resp.Timing.QueueUS, 10)
	return append(b, "}}\n"...), true
}

// appendString appends s as a JSON string. Printable ASCII other than
// the characters encoding/json escapes is copied as it is; any other
// string is encoded by encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			e, _ := json.Marshal(s) // a string always encodes
			return append(b, e...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendFloat appends a finite f as encoding/json does: the shortest
// decimal that round-trips, in exponent form below 1e-6 and from 1e21 on,
// with a one-digit negative exponent written without its leading zero.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// nonFiniteScore is the error of an answer with a NaN or infinite score,
// nil when every score is finite: only a broken model gives one, and the
// request gets a 500 naming the item rather than a number JSON cannot
// carry.
func nonFiniteScore(resp *Response) *APIError {
	for _, it := range resp.Items {
		if math.IsNaN(it.Score) || math.IsInf(it.Score, 0) {
			return &APIError{Status: http.StatusInternalServerError, Model: &resp.Model,
				Message: fmt.Sprintf("item %q scored %v, not a finite number: model version %d is broken", it.ID, it.Score, resp.Model.Version)}
		}
	}
	return nil
}
