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
// as the rows and offsets: per list a header (x + key: ref and last) and a
// record per item (x + key + item: n, err, own and user), so a commit
// writes only the items that changed (a list of 100 items rewritten whole
// for one count made the memory most of the trainer's Pebble writes), and
// each task's memory weights with their accumulators.

var errMemoryRecord = errors.New("truncated or malformed record")

// memItemBytes is the size of an item record's value.
const memItemBytes = 32

func memKey(key uint64) []byte {
	k := rowKey(key)
	k[0] = prefixMem
	return k
}

func commitMemory(b *pebble.Batch, m *memory) error {
	for key := range m.cleared {
		end := memKey(key + 1)
		if key == math.MaxUint64 {
			end = []byte{prefixMem + 1}
		}
		if err := b.DeleteRange(memKey(key), end, nil); err != nil {
			return err
		}
	}
	for key := range m.dirty {
		if l := m.lists[key]; l != nil {
			if err := b.Set(memKey(key), encodeMemHeader(l), nil); err != nil {
				return err
			}
		}
	}
	for _, r := range m.touched {
		l := m.lists[r.key]
		if l == nil {
			continue // dropped: its records went with the range
		}
		ik := append(memKey(r.key), r.item...)
		var err error
		if i := l.find(r.item, itemHash(r.item)); i >= 0 {
			err = b.Set(ik, encodeMemCount(l.entries[i].memCount), nil)
		} else {
			err = b.Delete(ik, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func encodeMemHeader(l *memList) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(l.ref))
	return binary.LittleEndian.AppendUint64(b, uint64(l.last))
}

func encodeMemCount(c memCount) []byte {
	b := make([]byte, 0, memItemBytes)
	for _, v := range [...]uint64{math.Float64bits(c.n), math.Float64bits(c.err), math.Float64bits(c.own), c.user} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

// loadMemRecord reads one memory record (a list header or an item) into m;
// a list's header sorts before its items.
func loadMemRecord(m *memory, k, v []byte) error {
	key := binary.BigEndian.Uint64(k[1:9])
	if len(k) == 9 {
		if len(v) != 16 {
			return errMemoryRecord
		}
		l := newMemList(int64(binary.LittleEndian.Uint64(v)))
		l.last = int64(binary.LittleEndian.Uint64(v[8:]))
		m.lists[key] = l
		return nil
	}
	l := m.lists[key]
	if l == nil || len(v) != memItemBytes {
		return errMemoryRecord
	}
	f := func(i int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(v[8*i:])) }
	item := string(k[9:])
	l.insert(item, itemHash(item), memCount{n: f(0), err: f(1), own: f(2), user: binary.LittleEndian.Uint64(v[24:])})
	return nil
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
