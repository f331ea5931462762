package ingest

import (
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/unirec/unirec/stream"
)

// EventDecoder is a strict, allocation-light decoder of the event JSON shape.
// It accepts and rejects exactly what encoding/json accepts and rejects when
// unmarshalling into Event (same field-name matching, same type rules, same
// string unescaping), with one deliberate difference: a field of the event or
// of its item given twice is rejected as bad_json instead of merged. A fuzz
// test holds it to that.
//
// Strings without escapes are sub-strings of one copy of the record, so a
// typical event costs a few allocations. The Event returned by Decode is
// reused by the next call; the strings in it are not.
type EventDecoder struct {
	ev   Event
	ctx  map[string]string
	item stream.ItemMeta
	pos  int32
	seen int // bits of the fields given so far
}

// NewEventDecoder returns a decoder.
func NewEventDecoder() *EventDecoder {
	return &EventDecoder{ctx: make(map[string]string, 8)}
}

// DecodeEvent parses and validates the shape of one event into a new Event.
// Canvas-specific checks happen in Registry.Check.
func DecodeEvent(b []byte, maxBytes int) (*Event, *Rejection) {
	e, rej := NewEventDecoder().Decode(b, maxBytes)
	if rej != nil {
		return nil, rej
	}
	return e, nil
}

// Decode parses and validates the shape of one event. The Event is valid
// until the next call.
func (d *EventDecoder) Decode(b []byte, maxBytes int) (*Event, *Rejection) {
	if len(b) > maxBytes {
		return nil, reject(ReasonTooLarge, "event is %d bytes, limit is %d", len(b), maxBytes)
	}
	d.ev, d.seen = Event{}, 0
	s := scanner{s: string(b), d: d}
	if err := s.event(); err != nil {
		return nil, err
	}
	return &d.ev, checkShape(&d.ev)
}

// checkShape rejects events that lack a field every event needs.
func checkShape(e *Event) *Rejection {
	for _, f := range [...]struct{ name, v string }{
		{"event_id", e.EventID}, {"canvas", e.Canvas}, {"action", e.Action}, {"item_id", e.ItemID},
	} {
		if f.v == "" {
			return reject(ReasonMissingField, "%s is required", f.name)
		}
	}
	if e.Time.IsZero() {
		return reject(ReasonMissingField, "time is required (RFC 3339, e.g. 2026-11-27T10:00:00.120Z)")
	}
	return nil
}

// maxDepth is encoding/json's nesting limit.
const maxDepth = 10000

// Field bits, to reject a field given twice.
const (
	fEventID = 1 << iota
	fTime
	fCanvas
	fAction
	fRequestID
	fItemID
	fPosition
	fContext
	fItem
	fType
	fTitle
	fCategories
)

var eventFields = []struct {
	name string
	bit  int
}{
	{"event_id", fEventID}, {"time", fTime}, {"canvas", fCanvas}, {"action", fAction},
	{"request_id", fRequestID}, {"item_id", fItemID}, {"position", fPosition},
	{"context", fContext}, {"item", fItem},
}

var itemFields = []struct {
	name string
	bit  int
}{{"type", fType}, {"title", fTitle}, {"categories", fCategories}}

// scanner walks one event document.
type scanner struct {
	s string
	i int
	d *EventDecoder
}

func (s *scanner) syntax(what string) *Rejection {
	if s.i >= len(s.s) {
		return reject(ReasonBadJSON, "unexpected end of JSON input: %s", what)
	}
	return reject(ReasonBadJSON, "invalid JSON at byte %d: %s", s.i, what)
}

func (s *scanner) ws() {
	for s.i < len(s.s) {
		switch s.s[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.s) {
		return s.s[s.i]
	}
	return 0
}

// event parses the whole document: an object (or null) and nothing after it.
func (s *scanner) event() *Rejection {
	s.ws()
	switch s.peek() {
	case '{':
		if err := s.object(1, s.eventField); err != nil {
			return err
		}
	case 'n':
		if err := s.literal("null"); err != nil {
			return err
		}
	default:
		kind := s.kind()
		if err := s.skip(0); err != nil {
			return err
		}
		s.ws()
		if s.i < len(s.s) {
			return s.syntax("data after the top-level value")
		}
		return reject(ReasonBadJSON, "an event must be a JSON object, got %s", kind)
	}
	s.ws()
	if s.i < len(s.s) {
		return s.syntax("data after the event object")
	}
	return nil
}

// object parses {"key": value, ...}, calling field for each key with the
// scanner at its value; depth is the object's nesting depth.
func (s *scanner) object(depth int, field func(key string, depth int) *Rejection) *Rejection {
	if depth > maxDepth {
		return s.syntax("exceeded max depth")
	}
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return s.syntax("expected a string object key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return s.syntax("expected ':' after object key")
		}
		s.i++
		s.ws()
		if err := field(key, depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("expected ',' or '}' after object value")
		}
	}
}

// match finds key among fields as encoding/json does: exact, then folded.
func match(key string, fields []struct {
	name string
	bit  int
}) int {
	for _, f := range fields {
		if f.name == key {
			return f.bit
		}
	}
	folded := foldName(key)
	for _, f := range fields {
		if foldName(f.name) == folded {
			return f.bit
		}
	}
	return 0
}

// foldName folds a name as encoding/json does to match struct fields:
// ASCII letters to upper case, any other rune to the smallest rune of its
// simple case-folding orbit (unicode.SimpleFold), so foldName(x) ==
// foldName(y) exactly when bytes.EqualFold(x, y). Upper-casing instead
// (unicode.ToUpper) took "ıtem_id" (dotless i) as item_id, which
// encoding/json does not, and missed the Kelvin sign K, which it folds to K.
func foldName(in string) string {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(in[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return string(out)
}

// foldRune returns the smallest rune of r's simple folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// eventField decodes the value of one top-level key.
func (s *scanner) eventField(key string, depth int) *Rejection {
	bit := match(key, eventFields)
	if bit == 0 {
		return s.skip(depth)
	}
	if err := s.once(bit, key); err != nil {
		return err
	}
	e := &s.d.ev
	switch bit {
	case fEventID:
		return s.strField(&e.EventID, "event_id")
	case fCanvas:
		return s.strField(&e.Canvas, "canvas")
	case fAction:
		return s.strField(&e.Action, "action")
	case fRequestID:
		return s.strField(&e.RequestID, "request_id")
	case fItemID:
		return s.strField(&e.ItemID, "item_id")
	case fTime:
		return s.timeField()
	case fPosition:
		return s.positionField()
	case fContext:
		return s.contextField(depth)
	default:
		return s.itemField(depth)
	}
}

// once rejects a field given twice.
func (s *scanner) once(bit int, key string) *Rejection {
	if s.d.seen&bit != 0 {
		return reject(ReasonBadJSON, "field %q is given twice", key)
	}
	s.d.seen |= bit
	return nil
}

// kind names the JSON type of the value at the scanner.
func (s *scanner) kind() string {
	switch c := s.peek(); {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return "invalid value"
}

// typeErr rejects a value of the wrong JSON type; the value must still be
// well-formed for the message to be about its type.
func (s *scanner) typeErr(field, want string, depth int) *Rejection {
	kind := s.kind()
	if err := s.skip(depth); err != nil {
		return err
	}
	return reject(ReasonBadJSON, "%s must be %s, got %s", field, want, kind)
}

// strField decodes a string field; null leaves it empty.
func (s *scanner) strField(dst *string, name string) *Rejection {
	switch s.peek() {
	case '"':
		v, err := s.str()
		*dst = v
		return err
	case 'n':
		return s.literal("null")
	}
	return s.typeErr(name, "a string", 1)
}

// timeField parses an RFC 3339 string exactly as time.Time.UnmarshalJSON
// does (on the raw bytes between the quotes); null leaves it zero.
func (s *scanner) timeField() *Rejection {
	switch s.peek() {
	case '"':
		start := s.i
		if _, err := s.str(); err != nil {
			return err
		}
		var buf [48]byte
		if err := s.d.ev.Time.UnmarshalJSON(append(buf[:0], s.s[start:s.i]...)); err != nil {
			return reject(ReasonBadJSON, "time: %v", err)
		}
		return nil
	case 'n':
		return s.literal("null")
	}
	return s.typeErr("time", "an RFC 3339 string", 1)
}

// positionField parses an int32; null leaves it unset.
func (s *scanner) positionField() *Rejection {
	c := s.peek()
	if c == 'n' {
		return s.literal("null")
	}
	if c != '-' && (c < '0' || c > '9') {
		return s.typeErr("position", "an integer", 1)
	}
	start := s.i
	if err := s.number(); err != nil {
		return err
	}
	n, err := strconv.ParseInt(s.s[start:s.i], 10, 32)
	if err != nil {
		return reject(ReasonBadJSON, "position must be a 32-bit integer, got %s", s.s[start:s.i])
	}
	s.d.pos = int32(n)
	s.d.ev.Position = &s.d.pos
	return nil
}

// contextField parses an object of strings (null values give "").
func (s *scanner) contextField(depth int) *Rejection {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		return s.typeErr("context", "an object of strings", depth)
	}
	clear(s.d.ctx)
	s.d.ev.Context = s.d.ctx
	return s.object(depth+1, func(key string, _ int) *Rejection {
		switch s.peek() {
		case '"':
			v, err := s.str()
			s.d.ctx[key] = v
			return err
		case 'n':
			s.d.ctx[key] = ""
			return s.literal("null")
		}
		return s.typeErr("context."+key, "a string", depth+1)
	})
}

// itemField parses the item metadata object.
func (s *scanner) itemField(depth int) *Rejection {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		return s.typeErr("item", "an object", depth)
	}
	s.d.item = stream.ItemMeta{}
	s.d.ev.Item = &s.d.item
	return s.object(depth+1, func(key string, depth int) *Rejection {
		bit := match(key, itemFields)
		if bit == 0 {
			return s.skip(depth)
		}
		if err := s.once(bit, key); err != nil {
			return err
		}
		switch bit {
		case fType:
			return s.strField(&s.d.item.Type, "item.type")
		case fTitle:
			return s.strField(&s.d.item.Title, "item.title")
		}
		return s.categories(depth)
	})
}

// categories parses an array of strings (null elements give "").
func (s *scanner) categories(depth int) *Rejection {
	switch s.peek() {
	case 'n':
		return s.literal("null")
	case '[':
	default:
		return s.typeErr("item.categories", "an array of strings", depth)
	}
	if depth+1 > maxDepth {
		return s.syntax("exceeded max depth")
	}
	s.i++
	s.ws()
	cats := []string{}
	if s.peek() == ']' {
		s.i++
		s.d.item.Categories = cats
		return nil
	}
	for {
		switch s.peek() {
		case '"':
			v, err := s.str()
			if err != nil {
				return err
			}
			cats = append(cats, v)
		case 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
			cats = append(cats, "")
		default:
			return s.typeErr("item.categories[]", "a string", depth+1)
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.d.item.Categories = cats
			return nil
		default:
			return s.syntax("expected ',' or ']' after array element")
		}
	}
}

// str reads a string token. Plain ASCII and valid UTF-8 without escapes are
// sub-strings of the record; anything else is unescaped by encoding/json, so
// escapes and invalid UTF-8 get exactly its treatment.
func (s *scanner) str() (string, *Rejection) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.s) && plainByte[s.s[s.i]] {
		s.i++
	}
	if s.i < len(s.s) && s.s[s.i] == '"' {
		s.i++
		return s.s[start : s.i-1], nil
	}
	for s.i < len(s.s) {
		c := s.s[s.i]
		switch {
		case c == '"':
			s.i++
			return s.unescape(start-1, s.s[start:s.i-1])
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return "", s.syntax("control character in string")
		default:
			s.i++
		}
	}
	s.i = len(s.s)
	return "", s.syntax("unterminated string")
}

// plainByte marks the bytes a string can hold as they are: printable ASCII
// other than the quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// unescape decodes the string token starting at byte start whose raw
// content is raw.
func (s *scanner) unescape(start int, raw string) (string, *Rejection) {
	hasEscape := false
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' {
			hasEscape = true
			break
		}
	}
	if !hasEscape && utf8.ValidString(raw) {
		return raw, nil
	}
	var v string
	if err := json.Unmarshal([]byte(s.s[start:s.i]), &v); err != nil {
		return "", reject(ReasonBadJSON, "invalid JSON string at byte %d: %v", start, err)
	}
	return v, nil
}

// literal reads true, false or null.
func (s *scanner) literal(want string) *Rejection {
	if len(s.s)-s.i >= len(want) && s.s[s.i:s.i+len(want)] == want {
		s.i += len(want)
		return nil
	}
	return s.syntax("invalid literal")
}

// number reads a JSON number.
func (s *scanner) number() *Rejection {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.syntax("invalid number")
	}
	if s.peek() == '.' {
		s.i++
		if c := s.peek(); c < '0' || c > '9' {
			return s.syntax("invalid number: no digit after the decimal point")
		}
		s.digits()
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if c := s.peek(); c < '0' || c > '9' {
			return s.syntax("invalid number: no digit in the exponent")
		}
		s.digits()
	}
	return nil
}

func (s *scanner) digits() {
	for s.i < len(s.s) && s.s[s.i] >= '0' && s.s[s.i] <= '9' {
		s.i++
	}
}

// skip validates and passes over any value inside a container of the given
// depth.
func (s *scanner) skip(depth int) *Rejection {
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		return s.object(depth+1, func(_ string, d int) *Rejection { return s.skip(d) })
	case c == '[':
		return s.array(depth + 1)
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return s.syntax("expected a value")
}

func (s *scanner) array(depth int) *Rejection {
	if depth > maxDepth {
		return s.syntax("exceeded max depth")
	}
	s.i++
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.skip(depth); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return nil
		default:
			return s.syntax("expected ',' or ']' after array element")
		}
	}
}
