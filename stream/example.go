package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
)

// Example is one unified labeled example: a (request context, item) pair of
// one task (canvas), with its label and weight. Every canvas' examples share
// this schema; fields a canvas lacks carry sentinel defaults.
type Example struct {
	Task      string // the canvas that produced it: the task type
	EventID   string // the event that produced it
	RequestID string
	ItemID    string
	Action    string  // the deciding action ("impression" for a negative without engagement)
	EventTime int64   // unix milliseconds of the deciding event
	Label     float32 // 1 positive, 0 negative
	Weight    float32 // example weight (action weight times stratification weight)
	// SampleProb is the probability with which a sampled negative was drawn;
	// 0 for examples that were logged, not sampled.
	SampleProb float32
	Position   int32 // slot the item was shown in, -1 when unknown
	Context    []Field
	Item       ItemMeta
}

// Field is one field of the unified request context.
type Field struct {
	Name, Value string
}

// ItemMeta is the item metadata known when the example was made.
type ItemMeta struct {
	Type       string   `json:"type,omitempty"`
	Title      string   `json:"title,omitempty"`
	Categories []string `json:"categories,omitempty"`
}

// ContextValue returns the value of the named context field, or "".
func (e *Example) ContextValue(name string) string {
	for _, f := range e.Context {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

const exampleCodecVersion = 1

// ErrBadExample is returned for bytes that are not an encoded example.
var ErrBadExample = errors.New("malformed example record")

// AppendExample appends the wire encoding of e to dst.
func AppendExample(dst []byte, e *Example) []byte {
	dst = append(dst, exampleCodecVersion)
	for _, s := range [...]string{e.Task, e.EventID, e.RequestID, e.ItemID, e.Action} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendVarint(dst, e.EventTime)
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.Label))
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.Weight))
	dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(e.SampleProb))
	dst = binary.AppendVarint(dst, int64(e.Position))
	dst = binary.AppendUvarint(dst, uint64(len(e.Context)))
	for _, f := range e.Context {
		dst = appendString(dst, f.Name)
		dst = appendString(dst, f.Value)
	}
	dst = appendString(dst, e.Item.Type)
	dst = appendString(dst, e.Item.Title)
	dst = binary.AppendUvarint(dst, uint64(len(e.Item.Categories)))
	for _, c := range e.Item.Categories {
		dst = appendString(dst, c)
	}
	return dst
}

// DecodeExample decodes b into e, reusing e's slices.
func DecodeExample(b []byte, e *Example) error {
	return decodeExample(decoder{b: b}, e)
}

// ExampleDecoder decodes examples as DecodeExample does, but returns one
// string for equal names and ids it has recently seen (tasks, field names,
// item and user ids, item types, titles and categories): a consumer that decodes a stream of
// examples then allocates each recurring string about once, not once per
// example. The cache is direct-mapped and bounded (stringCacheSlots
// strings of up to stringCacheMax bytes); event and request ids, unique per
// event, bypass it. The examples of one request share their context, so
// it also keeps the last context it decoded (up to contextKeepMax encoded
// bytes): an example whose context is encoded with the same bytes gets
// its fields without decoding them. Not safe for concurrent use.
type ExampleDecoder struct {
	seed    maphash.Seed
	strings []string
	ctxRaw  []byte  // the last context decoded, as encoded (count and fields)
	ctx     []Field // and its fields
}

const (
	stringCacheSlots = 1 << 13
	stringCacheMax   = 64
	contextKeepMax   = 1 << 10
)

// NewExampleDecoder returns a decoder with an empty string cache.
func NewExampleDecoder() *ExampleDecoder {
	return &ExampleDecoder{seed: maphash.MakeSeed(), strings: make([]string, stringCacheSlots)}
}

// Decode decodes b into e, reusing e's slices.
func (x *ExampleDecoder) Decode(b []byte, e *Example) error {
	return decodeExample(decoder{b: b, cache: x}, e)
}

// of returns the cached string equal to b, caching it first on a miss.
func (x *ExampleDecoder) of(b []byte) string {
	if len(b) > stringCacheMax {
		return string(b)
	}
	slot := &x.strings[maphash.Bytes(x.seed, b)&(stringCacheSlots-1)]
	if *slot != string(b) {
		*slot = string(b)
	}
	return *slot
}

func decodeExample(d decoder, e *Example) error {
	if v := d.byte(); v != exampleCodecVersion {
		return fmt.Errorf("%w: codec version %d, want %d", ErrBadExample, v, exampleCodecVersion)
	}
	e.Task, e.EventID, e.RequestID, e.ItemID, e.Action = d.string(), d.unique(), d.unique(), d.string(), d.string()
	e.EventTime = d.varint()
	e.Label, e.Weight, e.SampleProb = d.float32(), d.float32(), d.float32()
	e.Position = int32(d.varint())
	d.context(e)
	e.Item.Type, e.Item.Title = d.string(), d.string()
	n := d.count()
	e.Item.Categories = e.Item.Categories[:0]
	for i := 0; i < n; i++ {
		e.Item.Categories = append(e.Item.Categories, d.string())
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadExample, len(d.b))
	}
	return nil
}

// context reads e's context fields. With a cache it takes the fields of
// the last context decoded when the bytes begin with its encoding: the
// encoding is a count and that many fields, each length-prefixed, so such
// bytes decode to exactly those fields.
func (d *decoder) context(e *Example) {
	x := d.cache
	if x != nil && len(x.ctxRaw) > 0 && bytes.HasPrefix(d.b, x.ctxRaw) {
		e.Context = append(e.Context[:0], x.ctx...)
		d.b = d.b[len(x.ctxRaw):]
		return
	}
	start := d.b
	n := d.count()
	e.Context = e.Context[:0]
	for i := 0; i < n; i++ {
		e.Context = append(e.Context, Field{Name: d.string(), Value: d.string()})
	}
	if x != nil && d.err == nil {
		if raw := start[:len(start)-len(d.b)]; len(raw) <= contextKeepMax {
			x.ctxRaw, x.ctx = append(x.ctxRaw[:0], raw...), append(x.ctx[:0], e.Context...)
		} else {
			x.ctxRaw, x.ctx = x.ctxRaw[:0], x.ctx[:0]
		}
	}
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder reads the primitives of the example codec; the first error
// sticks. Strings that recur come from cache when it is set.
type decoder struct {
	b     []byte
	err   error
	cache *ExampleDecoder
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrBadExample, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("version")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in the remaining bytes.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("count")
		return 0
	}
	return int(n)
}

// string reads a string that may recur (a name or an id).
func (d *decoder) string() string {
	b := d.bytes()
	if d.cache == nil || len(b) == 0 {
		return string(b)
	}
	return d.cache.of(b)
}

// unique reads a string that does not recur (an event's own id).
func (d *decoder) unique() string {
	return string(d.bytes())
}

func (d *decoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) float32() float32 {
	if len(d.b) < 4 {
		d.fail("float32")
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}
