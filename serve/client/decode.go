package client

import (
	"encoding/json"
	"strconv"

	"github.com/unirec/unirec/serve"
)

// A replica writes its recommend answers in one layout: encoding/json's,
// without spaces, the fields in their declared order. decodeResponse reads
// that layout with a scanner and gives anything else (spaces, escapes,
// other fields or orders, another server) to encoding/json, so its result
// is json.Unmarshal's either way (TestDecodeResponseIsUnmarshals).
// json.Unmarshal spent about 100 us on a 100-item answer, as much as the
// load benchmark's whole request elsewhere (bench/README.md, "Serving: the
// answer path").

// decodeResponse decodes an answer of POST /v1/recommend into out.
func decodeResponse(raw []byte, out *serve.Response) error {
	if s := (scanner{b: raw}); s.response(out) {
		return nil
	}
	*out = serve.Response{}
	return json.Unmarshal(raw, out)
}

// scanner reads the replica's layout; it gives up (returns false) at the
// first byte that is not where the layout has it.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) response(r *serve.Response) bool {
	if !s.lit(`{"items":`) || !s.items(r) ||
		!s.lit(`,"model":{"version":`) || !s.int(&r.Model.Version) ||
		s.lit(`,"watermark":`) && !s.str(&r.Model.Watermark) ||
		!s.lit(`,"staleness_ms":`) || !s.int(&r.Model.StalenessMS) ||
		!s.lit(`,"stale":`) || !s.bool(&r.Model.Stale) ||
		!s.lit(`},"fallback":{"used":`) || !s.bool(&r.Fallback.Used) ||
		s.lit(`,"reason":`) && !s.str(&r.Fallback.Reason) ||
		s.lit(`,"source":`) && !s.str(&r.Fallback.Source) ||
		!s.lit(`},"cached":`) || !s.bool(&r.Cached) ||
		!s.lit(`,"timing":{"total_us":`) || !s.int(&r.Timing.TotalUS) ||
		!s.lit(`,"queue_us":`) || !s.int(&r.Timing.QueueUS) || !s.lit(`}}`) {
		return false
	}
	return s.i == len(s.b) || s.i == len(s.b)-1 && s.b[s.i] == '\n'
}

// items reads the items array, or null.
func (s *scanner) items(r *serve.Response) bool {
	if s.lit("null") {
		return true
	}
	if !s.lit("[") {
		return false
	}
	r.Items = make([]serve.Item, 0, 16)
	if s.lit("]") {
		return true
	}
	for {
		var it serve.Item
		if !s.lit(`{"id":`) || !s.str(&it.ID) || !s.lit(`,"score":`) || !s.float(&it.Score) || !s.lit("}") {
			return false
		}
		r.Items = append(r.Items, it)
		if s.lit("]") {
			return true
		}
		if !s.lit(",") {
			return false
		}
	}
}

// lit reads l if it comes next; it reports whether it did.
func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return false
	}
	s.i += len(l)
	return true
}

// str reads a string of printable ASCII without escapes (what
// encoding/json would read as it is).
func (s *scanner) str(v *string) bool {
	if !s.lit(`"`) {
		return false
	}
	for j := s.i; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			*v = string(s.b[s.i:j])
			s.i = j + 1
			return true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return false
		}
	}
	return false
}

// number reads the bytes of a JSON number,
// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, and returns where they
// end; frac allows the fraction and exponent.
func (s *scanner) number(frac bool) (int, bool) {
	j := s.i
	digits := func() bool {
		k := j
		for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	if j < len(s.b) && s.b[j] == '0' {
		j++
	} else if !digits() {
		return 0, false
	}
	if frac && j < len(s.b) && s.b[j] == '.' {
		j++
		if !digits() {
			return 0, false
		}
	}
	if frac && j < len(s.b) && (s.b[j] == 'e' || s.b[j] == 'E') {
		j++
		if j < len(s.b) && (s.b[j] == '+' || s.b[j] == '-') {
			j++
		}
		if !digits() {
			return 0, false
		}
	}
	return j, true
}

func (s *scanner) float(v *float64) bool {
	j, ok := s.number(true)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(s.b[s.i:j]), 64) // not kept: no copy
	s.i, *v = j, f
	return err == nil
}

func (s *scanner) int(v *int64) bool {
	j, ok := s.number(false)
	if !ok {
		return false
	}
	x, err := strconv.ParseInt(string(s.b[s.i:j]), 10, 64)
	s.i, *v = j, x
	return err == nil
}

func (s *scanner) bool(v *bool) bool {
	switch {
	case s.lit("true"):
		*v = true
	case s.lit("false"):
		*v = false
	default:
		return false
	}
	return true
}
