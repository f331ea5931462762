package online

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/unirec/unirec/stream"
)

// Key prefixes of the parameter store. Everything the trainer needs to
// resume lives here, and one Pebble batch carries both the parameters a
// range of examples produced and the offset after that range.
const (
	prefixRow   = 'r' // r + id(8, big endian) -> row
	prefixTask  = 't' // t + task -> task params
	prefixItem  = 'i' // i + item id -> item metadata
	prefixPop   = 'p' // p + task + 0 + item -> popularity
	prefixMeta  = 'm' // m + name -> meta
	metaOffsets = "moffsets"
	metaState   = "mstate"
)

// Store is the Pebble-backed parameter store.
type Store struct {
	db  *pebble.DB
	dim int
}

// OpenStore opens (or creates) the store in dir.
func OpenStore(dir string, dim int) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return nil, fmt.Errorf("cannot open parameter store at %q: %w", dir, err)
	}
	return &Store{db: db, dim: dim}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// trainerState is the scalar state saved with every commit.
type trainerState struct {
	Dim       int64
	Watermark int64
	Applied   int64
	Version   int64 // last snapshot version published from this store
}

func rowKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixRow
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func encodeFloats(dst []byte, fs []float32) []byte {
	for _, f := range fs {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(f))
	}
	return dst
}

func decodeFloats(dst []float32, b []byte) []float32 {
	for i := 0; i+4 <= len(b); i += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
	}
	return dst
}

func encodeRow(r *row) []byte {
	b := make([]byte, 0, 4*len(r.w)+4*len(r.acc)+8)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.last))
	b = encodeFloats(b, r.w)
	return encodeFloats(b, r.acc)
}

func (s *Store) decodeRow(b []byte) (*row, error) {
	n := s.dim + 1
	if len(b) < 8+4*n || (len(b)-8)%4 != 0 {
		return nil, fmt.Errorf("cannot decode row: %d bytes for dim %d", len(b), s.dim)
	}
	fs := decodeFloats(make([]float32, 0, (len(b)-8)/4), b[8:])
	return &row{last: int64(binary.LittleEndian.Uint64(b)), w: fs[:n:n], acc: fs[n:]}, nil
}

func encodeTask(tp *taskState) []byte {
	b := encodeFloats(nil, []float32{tp.p.Bias, tp.accBias})
	b = encodeFloats(b, tp.p.Scale)
	b = encodeFloats(b, tp.p.Shift)
	b = encodeFloats(b, tp.accScale)
	return encodeFloats(b, tp.accShift)
}

func (s *Store) decodeTask(b []byte) (*taskState, error) {
	fs := decodeFloats(nil, b)
	d := s.dim
	if len(fs) != 2+4*d {
		return nil, fmt.Errorf("cannot decode task params: %d floats for dim %d", len(fs), d)
	}
	return &taskState{
		p:       &TaskParams{Bias: fs[0], Scale: fs[2 : 2+d], Shift: fs[2+d : 2+2*d]},
		accBias: fs[1], accScale: fs[2+2*d : 2+3*d], accShift: fs[2+3*d:],
	}, nil
}

// load reads the whole store into t.
func (s *Store) load(t *Trainer) error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("cannot iterate parameter store: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := s.loadEntry(t, it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

func (s *Store) loadEntry(t *Trainer, k, v []byte) error {
	switch {
	case k[0] == prefixRow && len(k) == 9:
		r, err := s.decodeRow(v)
		if err != nil {
			return err
		}
		t.rows[binary.BigEndian.Uint64(k[1:])] = r
	case k[0] == prefixTask:
		tp, err := s.decodeTask(v)
		if err != nil {
			return err
		}
		t.tasks[string(k[1:])] = tp
	case k[0] == prefixItem:
		var m stream.ItemMeta
		if err := decodeItem(v, &m); err != nil {
			return err
		}
		t.items[string(k[1:])] = m
	case k[0] == prefixPop:
		task, item, ok := cut(string(k[1:]))
		if !ok || len(v) != 8 {
			return fmt.Errorf("cannot decode popularity entry %q", k)
		}
		t.popularity(task)[item] = math.Float64frombits(binary.LittleEndian.Uint64(v))
	case string(k) == metaOffsets:
		for i := 0; i+12 <= len(v); i += 12 {
			t.offsets[int32(binary.LittleEndian.Uint32(v[i:]))] = int64(binary.LittleEndian.Uint64(v[i+4:]))
		}
	case string(k) == metaState:
		if len(v) != 32 {
			return errors.New("cannot decode trainer state")
		}
		st := trainerState{
			Dim: int64(binary.LittleEndian.Uint64(v)), Watermark: int64(binary.LittleEndian.Uint64(v[8:])),
			Applied: int64(binary.LittleEndian.Uint64(v[16:])), Version: int64(binary.LittleEndian.Uint64(v[24:])),
		}
		if st.Dim != int64(s.dim) {
			return fmt.Errorf("parameter store has dim %d but model.dim is %d: use a new data dir or the old dim", st.Dim, s.dim)
		}
		t.watermark, t.applied, t.version = st.Watermark, st.Applied, st.Version
	}
	return nil
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func encodeItem(m stream.ItemMeta) []byte {
	ex := stream.Example{Item: m}
	return stream.AppendExample(nil, &ex)
}

func decodeItem(b []byte, m *stream.ItemMeta) error {
	var ex stream.Example
	if err := stream.DecodeExample(b, &ex); err != nil {
		return fmt.Errorf("cannot decode item metadata: %w", err)
	}
	*m = ex.Item
	return nil
}

// commit writes the dirty state of t and its offsets in one synced batch.
func (s *Store) commit(t *Trainer) error {
	b := s.db.NewBatch()
	defer b.Close()
	for id := range t.dirtyRows {
		if r := t.rows[id]; r != nil {
			if err := b.Set(rowKey(id), encodeRow(r), nil); err != nil {
				return err
			}
		}
	}
	for name := range t.dirtyTasks {
		if err := b.Set(append([]byte{prefixTask}, name...), encodeTask(t.tasks[name]), nil); err != nil {
			return err
		}
	}
	for id := range t.dirtyItems {
		if err := b.Set(append([]byte{prefixItem}, id...), encodeItem(t.items[id]), nil); err != nil {
			return err
		}
	}
	for key := range t.dirtyPop {
		task, item, _ := cut(key)
		v := binary.LittleEndian.AppendUint64(nil, math.Float64bits(t.pop[task][item]))
		if err := b.Set(append([]byte{prefixPop}, key...), v, nil); err != nil {
			return err
		}
	}
	var offs []byte
	for p, o := range t.offsets {
		offs = binary.LittleEndian.AppendUint32(offs, uint32(p))
		offs = binary.LittleEndian.AppendUint64(offs, uint64(o))
	}
	if err := b.Set([]byte(metaOffsets), offs, nil); err != nil {
		return err
	}
	st := binary.LittleEndian.AppendUint64(nil, uint64(s.dim))
	st = binary.LittleEndian.AppendUint64(st, uint64(t.watermark))
	st = binary.LittleEndian.AppendUint64(st, uint64(t.applied))
	st = binary.LittleEndian.AppendUint64(st, uint64(t.version))
	if err := b.Set([]byte(metaState), st, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot commit parameters: %w", err)
	}
	return nil
}
