package online

import (
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// The memory's records in the parameter store, written in the same batch
// as the rows and offsets: a list per key (ref, last, then each item with
// n, err, own and user) and each task's memory weights with their
// accumulators.

var errMemoryRecord = errors.New("truncated or malformed record")

// memItemBytes is the size of an item's values in a list record.
const memItemBytes = 32

func commitMemory(b *pebble.Batch, m *memory) error {
	for key := range m.dirty {
		k := rowKey(key)
		k[0] = prefixMem
		var err error
		if l := m.lists[key]; l == nil {
			err = b.Delete(k, nil)
		} else {
			err = b.Set(k, encodeMemList(l), nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func encodeMemList(l *memList) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(l.ref))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.last))
	for _, item := range slices.Sorted(maps.Keys(l.counts)) {
		b = binary.AppendUvarint(b, uint64(len(item)))
		b = append(b, item...)
		c := l.counts[item]
		for _, v := range [...]uint64{math.Float64bits(c.n), math.Float64bits(c.err), math.Float64bits(c.own), c.user} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	}
	return b
}

func decodeMemList(b []byte) (*memList, error) {
	if len(b) < 16 {
		return nil, errMemoryRecord
	}
	l := &memList{counts: map[string]memCount{}, ref: int64(binary.LittleEndian.Uint64(b)), last: int64(binary.LittleEndian.Uint64(b[8:]))}
	for b = b[16:]; len(b) > 0; {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n+memItemBytes {
			return nil, errMemoryRecord
		}
		item, v := string(b[k:k+int(n)]), b[k+int(n):]
		f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(v[8*i:])) }
		l.counts[item] = memCount{n: f(0), err: f(1), own: f(2), user: binary.LittleEndian.Uint64(v[24:])}
		b = v[memItemBytes:]
	}
	return l, nil
}

func encodeMemoryWeights(ts *taskState) []byte {
	var b []byte
	for _, field := range slices.Sorted(maps.Keys(ts.p.Memory)) {
		b = binary.AppendUvarint(b, uint64(len(field)))
		b = append(b, field...)
		b = encodeFloats(b, []float32{ts.p.Memory[field], ts.accMemory[field]})
	}
	return b
}

func decodeMemoryWeights(b []byte, ts *taskState) error {
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n+8 {
			return errMemoryRecord
		}
		field := string(b[k : k+int(n)])
		fs := decodeFloats(nil, b[k+int(n):k+int(n)+8])
		ts.p.Memory[field], ts.accMemory[field] = fs[0], fs[1]
		b = b[k+int(n)+8:]
	}
	return nil
}
