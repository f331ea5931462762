package online

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// Key prefixes of the parameter store. Everything the trainer needs to
// resume lives here, and one Pebble batch carries both the parameters a
// range of examples produced and the offset after that range.
const (
	prefixRow   = 'r' // r + id(8, big endian) -> last use(8) + weights, bias, accumulators
	prefixCount = 'a' // a + id(8, big endian) -> sightings(4) + last(8) of a feature not yet admitted
	prefixTask  = 't' // t + task -> task params
	prefixItem  = 'i' // i + item id -> item metadata
	prefixPop   = 'p' // p + task + 0 + item -> popularity
	prefixMeta  = 'm' // m + name -> meta
	prefixMemW  = 'w' // w + task -> memory weights and accumulators
	prefixMem   = 'x' // x + key(8, big endian) -> memory list
	metaOffsets = "moffsets"
	metaState   = "mstate"
)

// Store is the Pebble-backed parameter store.
type Store struct {
	db  *pebble.DB
	dir string
	dim int
}

// OpenStore opens (or creates) the store in dir on fs (nil: the
// operating system's filesystem; tests pass a fault-injecting one).
func OpenStore(dir string, dim int, fs vfs.FS) (*Store, error) {
	fs = reportWriteErrors(fs, dir, log.Printf)
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebbleLogger{}, FS: fs})
	if err != nil {
		return nil, fmt.Errorf("cannot open parameter store at %q: %w", dir, err)
	}
	return &Store{db: db, dir: dir, dim: dim}, nil
}

// pebbleLogger drops Pebble's informational messages (WAL replay on every
// open) and keeps its errors.
type pebbleLogger struct{}

func (pebbleLogger) Infof(string, ...any) {}
func (pebbleLogger) Errorf(format string, args ...any) {
	log.Printf("pebble: "+format, args...)
}
func (pebbleLogger) Fatalf(format string, args ...any) {
	log.Fatalf("pebble: "+format, args...)
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

func encodeRow(dst []byte, last int64, vals []float32) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(last))
	return encodeFloats(dst, vals)
}

// decodeRow decodes a row's last use and its values (weights, bias and
// optimizer accumulators) into dst (len stride).
func decodeRow(b []byte, dst []float32) (int64, error) {
	if len(b) != 8+4*len(dst) {
		return 0, fmt.Errorf("cannot decode row: %d bytes, want %d (model.dim or model.optimizer changed? use a new data dir)", len(b), 8+4*len(dst))
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return int64(binary.LittleEndian.Uint64(b)), nil
}

// getRow reads the row of id into dst; found is false when it has none.
func (s *Store) getRow(id uint64, dst []float32) (last int64, found bool, err error) {
	v, closer, err := s.db.Get(rowKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("cannot read row %x: %w", id, err)
	}
	defer closer.Close()
	last, err = decodeRow(v, dst)
	return last, err == nil, err
}

// scanRows calls fn with every stored row, in id order.
func (s *Store) scanRows(stride int, fn func(id uint64, last int64, vals []float32)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixRow}, UpperBound: []byte{prefixRow + 1}})
	if err != nil {
		return fmt.Errorf("cannot iterate rows: %w", err)
	}
	defer it.Close()
	vals := make([]float32, stride)
	for it.First(); it.Valid(); it.Next() {
		last, err := decodeRow(it.Value(), vals)
		if err != nil {
			return err
		}
		fn(binary.BigEndian.Uint64(it.Key()[1:]), last, vals)
	}
	return it.Error()
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
		p:       &model.TaskParams{Bias: fs[0], Scale: fs[2 : 2+d], Shift: fs[2+d : 2+2*d], Memory: map[string]float32{}},
		accBias: fs[1], accScale: fs[2+2*d : 2+3*d], accShift: fs[2+3*d:], accMemory: map[string]float32{},
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
		if t.opts.MaxRows > 0 && t.rows.len() >= t.opts.MaxRows {
			return nil // paged in on use
		}
		id := binary.BigEndian.Uint64(k[1:])
		tb := &t.rows.lanes[laneOf(id)].tab
		slot := tb.insert(id, nil, 0)
		last, err := decodeRow(v, tb.values(slot))
		if err != nil {
			return err
		}
		tb.last[slot] = last
	case k[0] == prefixCount && len(k) == 9:
		if len(v) != 12 {
			return fmt.Errorf("cannot decode admission counter %x", k)
		}
		id := binary.BigEndian.Uint64(k[1:])
		t.rows.lanes[laneOf(id)].adm.counts[id] = &sightings{n: binary.LittleEndian.Uint32(v), last: int64(binary.LittleEndian.Uint64(v[4:]))}
	case k[0] == prefixTask:
		tp, err := s.decodeTask(v)
		if err != nil {
			return err
		}
		t.tasks[string(k[1:])] = tp
	case k[0] == prefixMemW:
		ts := t.tasks[string(k[1:])]
		if ts == nil {
			return fmt.Errorf("cannot load memory weights of unknown task %q", k[1:])
		}
		return decodeMemoryWeights(v, ts)
	case k[0] == prefixMem && len(k) >= 9:
		if err := loadMemRecord(t.mem[memLaneOf(binary.BigEndian.Uint64(k[1:9]))], k, v); err != nil {
			return fmt.Errorf("cannot decode memory record %x: %w", k, err)
		}
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
		t.popularity(task).set(item, math.Float64frombits(binary.LittleEndian.Uint64(v)))
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
		t.watermark, t.version = st.Watermark, st.Version
		t.applied.Store(st.Applied)
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

// commitBatch returns one batch holding the dirty state of t and its
// offsets (copies: t may change once it returns), for write.
func (s *Store) commitBatch(t *Trainer) (*pebble.Batch, error) {
	b := s.db.NewBatch()
	if err := s.fillCommit(b, t); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// write syncs a commit batch and closes it; what says what it holds.
func (s *Store) write(b *pebble.Batch, what string) error {
	defer b.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("cannot commit parameter store at %q (%s; nothing since the last commit is saved): %w", s.dir, what, err)
	}
	return nil
}

func (s *Store) fillCommit(b *pebble.Batch, t *Trainer) error {
	if err := s.commitRows(b, t); err != nil {
		return err
	}
	for name := range t.dirtyTasks {
		if err := b.Set(append([]byte{prefixTask}, name...), encodeTask(t.tasks[name]), nil); err != nil {
			return err
		}
		if err := b.Set(append([]byte{prefixMemW}, name...), encodeMemoryWeights(t.tasks[name]), nil); err != nil {
			return err
		}
	}
	for id := range t.dirtyItems {
		if err := b.Set(append([]byte{prefixItem}, id...), encodeItem(t.items[id]), nil); err != nil {
			return err
		}
	}
	for task, p := range t.pop {
		for _, i := range p.dirty {
			e := &p.items[i]
			v := binary.LittleEndian.AppendUint64(nil, math.Float64bits(e.n))
			if err := b.Set(append(append(append([]byte{prefixPop}, task...), 0), e.item...), v, nil); err != nil {
				return err
			}
		}
	}
	for _, m := range t.mem {
		if err := commitMemory(b, m); err != nil {
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
	st = binary.LittleEndian.AppendUint64(st, uint64(t.applied.Load()))
	st = binary.LittleEndian.AppendUint64(st, uint64(t.version))
	return b.Set([]byte(metaState), st, nil)
}

// commitRows writes deleted rows, dirty rows and admission counters: the
// deletions first, so a row expired and created again in one interval is
// stored.
func (s *Store) commitRows(b *pebble.Batch, t *Trainer) error {
	for l := range t.rows.lanes {
		if err := commitLane(b, &t.rows.lanes[l]); err != nil {
			return err
		}
	}
	return nil
}

// commitLane writes a lane's deleted rows, dirty rows and admission
// counters, in that order.
func commitLane(b *pebble.Batch, ln *lane) error {
	for id := range ln.deleted {
		if err := b.Delete(rowKey(id), nil); err != nil {
			return err
		}
	}
	var buf []byte
	var err error
	tb := &ln.tab
	tb.eachDirty(func(slot int32) {
		if err == nil {
			buf = encodeRow(buf[:0], tb.last[slot], tb.values(slot))
			err = b.Set(rowKey(tb.ids[slot]), buf, nil)
		}
	})
	if err != nil {
		return err
	}
	for id := range ln.adm.dirty {
		k := rowKey(id)
		k[0] = prefixCount
		c := ln.adm.counts[id]
		if c == nil {
			err = b.Delete(k, nil)
		} else {
			v := binary.LittleEndian.AppendUint32(nil, c.n)
			err = b.Set(k, binary.LittleEndian.AppendUint64(v, uint64(c.last)), nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
