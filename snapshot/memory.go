package snapshot

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"

	"github.com/unirec/unirec/online/model"
)

// The model's memory lists in snapshots (online/model/memory.go): a delta
// carries every list whose items or counts changed, whole, and the keys of
// lists that disappeared; the task adapters carry the memory weights.

// diffMemory merges the sorted lists of prev and cur.
func diffMemory(d *Delta, prev, cur []model.MemoryList) {
	i, j := 0, 0
	for i < len(prev) || j < len(cur) {
		switch {
		case j == len(cur) || (i < len(prev) && prev[i].Key < cur[j].Key):
			d.MemoryDeleted = append(d.MemoryDeleted, prev[i].Key)
			i++
		case i == len(prev) || cur[j].Key < prev[i].Key:
			d.Memory = append(d.Memory, cur[j])
			j++
		default:
			if !sameList(prev[i], cur[j]) {
				d.Memory = append(d.Memory, cur[j])
			}
			i++
			j++
		}
	}
}

// sameList compares two versions of a list; one that shares its backing
// array (the trainer re-exports only changed lists) is the same at once.
func sameList(a, b model.MemoryList) bool {
	if a.Ref != b.Ref || len(a.Items) != len(b.Items) {
		return false
	}
	if len(a.Items) == 0 || &a.Items[0] == &b.Items[0] {
		return true
	}
	for i := range a.Items {
		if a.Items[i].Item != b.Items[i].Item || math.Float64bits(a.Items[i].Count) != math.Float64bits(b.Items[i].Count) {
			return false
		}
	}
	return true
}

// applyMemory merges base's sorted lists with d's changed and deleted ones.
func applyMemory(base []model.MemoryList, d *Delta) []model.MemoryList {
	var out []model.MemoryList
	i, j := 0, 0
	for i < len(base) || j < len(d.Memory) {
		switch {
		case j == len(d.Memory) || (i < len(base) && base[i].Key < d.Memory[j].Key):
			if _, gone := slices.BinarySearch(d.MemoryDeleted, base[i].Key); !gone {
				out = append(out, base[i])
			}
			i++
		default:
			if i < len(base) && base[i].Key == d.Memory[j].Key {
				i++
			}
			out = append(out, d.Memory[j])
			j++
		}
	}
	return out
}

// appendMemory encodes the memory weights of every task in d (in the
// order of names) and the lists.
func appendMemory(b []byte, d *Delta, names []string) []byte {
	for _, name := range names {
		w := d.Tasks[name].Memory
		b = binary.AppendUvarint(b, uint64(len(w)))
		for _, field := range slices.Sorted(maps.Keys(w)) {
			b = appendString(b, field)
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(w[field]))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.Memory)))
	for _, l := range d.Memory {
		b = binary.LittleEndian.AppendUint64(b, l.Key)
		b = binary.LittleEndian.AppendUint64(b, uint64(l.Ref))
		b = binary.AppendUvarint(b, uint64(len(l.Items)))
		for _, it := range l.Items {
			b = appendString(b, it.Item)
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(it.Count))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(d.MemoryDeleted)))
	for _, k := range d.MemoryDeleted {
		b = binary.LittleEndian.AppendUint64(b, k)
	}
	return b
}

// readMemory decodes what appendMemory wrote; names are the tasks in the
// order they were read.
func readMemory(r *reader, d *Delta, names []string) {
	for _, name := range names {
		tp := d.Tasks[name]
		for n := r.count(5); n > 0 && r.err == nil; n-- {
			if tp.Memory == nil {
				tp.Memory = map[string]float32{}
			}
			field := r.str()
			tp.Memory[field] = r.f32()
		}
		d.Tasks[name] = tp
	}
	if n := r.count(17); n > 0 {
		d.Memory = make([]model.MemoryList, n)
	}
	for i := range d.Memory {
		l := model.MemoryList{Key: r.u64(), Ref: int64(r.u64())}
		l.Items = make([]model.MemoryItem, r.count(9))
		for j := range l.Items {
			l.Items[j] = model.MemoryItem{Item: r.str(), Count: math.Float64frombits(r.u64())}
		}
		if i > 0 && l.Key <= d.Memory[i-1].Key {
			r.fail("memory lists (keys not increasing)")
		}
		d.Memory[i] = l
	}
	if n := r.count(8); n > 0 {
		d.MemoryDeleted = make([]uint64, n)
	}
	for i := range d.MemoryDeleted {
		d.MemoryDeleted[i] = r.u64()
	}
}
