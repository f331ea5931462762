package snapshot

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/unirec/unirec/online/model"
)

// Encoding is how the weights of a row are stored in a snapshot. A row is
// Dim weights and a bias; the bias is always a float32, the weights are
// stored as:
//
//	float32  4 bytes each, exact
//	float16  2 bytes each (IEEE 754 half, round to nearest even)
//	int8     one float32 scale per row (max |w| / 127), then 1 byte each
//
// Serving decodes every encoding back to float32.
type Encoding string

// The row encodings.
const (
	EncodingFloat32 Encoding = "float32"
	EncodingFloat16 Encoding = "float16"
	EncodingInt8    Encoding = "int8"
)

// Validate checks that e names a known encoding; empty means float32.
func (e Encoding) Validate() error {
	switch e {
	case "", EncodingFloat32, EncodingFloat16, EncodingInt8:
		return nil
	}
	return fmt.Errorf("snapshot.encoding must be float32, float16 or int8, got %q", string(e))
}

// rowBytes is the encoded size of one row of dim weights and a bias.
func (e Encoding) rowBytes(dim int) int {
	switch e {
	case EncodingFloat16:
		return 2*dim + 4
	case EncodingInt8:
		return 4 + dim + 4
	}
	return 4*dim + 4
}

// appendRow encodes w (dim weights then the bias).
func (e Encoding) appendRow(b []byte, w []float32) []byte {
	dim := len(w) - 1
	switch e {
	case EncodingFloat16:
		for _, v := range w[:dim] {
			b = binary.LittleEndian.AppendUint16(b, toHalf(v))
		}
	case EncodingInt8:
		var m float32
		for _, v := range w[:dim] {
			m = max(m, float32(math.Abs(float64(v))))
		}
		scale := m / 127
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(scale))
		for _, v := range w[:dim] {
			q := float32(0)
			if scale > 0 {
				q = float32(math.Round(float64(v / scale)))
			}
			b = append(b, byte(int8(min(max(q, -127), 127))))
		}
	default:
		for _, v := range w[:dim] {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(w[dim]))
}

// decodeRow decodes one row from src (exactly rowBytes long) into w.
func (e Encoding) decodeRow(w []float32, src []byte) {
	dim := len(w) - 1
	switch e {
	case EncodingFloat16:
		for i := range dim {
			w[i] = fromHalf(binary.LittleEndian.Uint16(src[2*i:]))
		}
		src = src[2*dim:]
	case EncodingInt8:
		scale := math.Float32frombits(binary.LittleEndian.Uint32(src))
		for i := range dim {
			w[i] = float32(int8(src[4+i])) * scale
		}
		src = src[4+dim:]
	default:
		for i := range dim {
			w[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		src = src[4*dim:]
	}
	w[dim] = math.Float32frombits(binary.LittleEndian.Uint32(src))
}

// toHalf converts to IEEE 754 binary16, rounding to nearest even;
// overflow becomes infinity and NaN stays NaN.
func toHalf(f float32) uint16 {
	x := math.Float32bits(f)
	sign := uint16(x>>16) & 0x8000
	exp := int(x>>23&0xff) - 127 + 15
	mant := x & 0x7fffff
	switch {
	case x&0x7fffffff > 0x7f800000: // NaN
		return sign | 0x7e00
	case exp >= 31: // overflow or Inf
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is right
	}
	return sign | uint16(h)
}

// fromHalf converts IEEE 754 binary16 to float32 exactly.
func fromHalf(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Encoded returns d as a replica decodes it after encoding its rows in enc,
// and the compressed payload size: what a compact encoding costs in
// accuracy and saves in bytes.
func Encoded(d *Delta, cfg model.ModelConfig, enc Encoding) (*Delta, int, error) {
	payload, err := encodePayload(d, enc)
	if err != nil {
		return nil, 0, err
	}
	m := &Manifest{Config: cfg, Encoding: enc, Rows: len(d.IDs), Deleted: len(d.Deleted), Tasks: len(d.Tasks),
		Items: len(d.Items), Memory: len(d.Memory), Checksum: checksum(payload)}
	out, err := decodePayload(m, payload)
	return out, len(payload), err
}
