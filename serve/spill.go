package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"

	"github.com/VictoriaMetrics/metrics"
)

// A spilled base keeps a bounded directory of its ids' top bits in
// memory (spillDirBits), with the item-feature rows every delta reads, and
// its rows and sorted ids in a file the replica reads with pread: a lookup
// reads the ids of one directory entry, then the row. A replica with more
// users than memory serves them from the OS page cache, and its heap does
// not grow with them beyond the overlay of rows changed since the last
// compaction (serve.rows_dir).
// The file is unlinked as soon as it is created, so a crash leaves
// nothing behind; it is closed when no version refers to its base.

// checkRowsDir creates dir (when set) and checks that a rows file can be
// made in it, so a bad serve.rows_dir fails at start.
func checkRowsDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("serve.rows_dir: %w", err)
	}
	f, err := os.CreateTemp(dir, "rows-check-*")
	if err != nil {
		return fmt.Errorf("serve.rows_dir: cannot create a rows file: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// spill moves the rows of t's base to a file in dir, unless they are
// there already or the base is empty; the rows keep says so of (item
// features: every delta recomputes some item vectors from them) stay in
// memory too. The base must not be shared with a version requests can see
// yet: Replica.Apply spills before it publishes.
func (t *rowTable) spill(dir string, st spillStats, keep func(id uint64) bool) error {
	b := t.base
	if b.file != nil || b.n == 0 {
		return nil
	}
	f, err := os.CreateTemp(dir, "rows-*")
	if err != nil {
		return fmt.Errorf("cannot spill rows to serve.rows_dir: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return fmt.Errorf("cannot spill rows to serve.rows_dir: %w", err)
	}
	if err := writeFloats(f, b.w); err != nil {
		f.Close()
		return fmt.Errorf("cannot spill %d rows to serve.rows_dir: %w", b.n, err)
	}
	if err := writeIDs(f, b.ids); err != nil {
		f.Close()
		return fmt.Errorf("cannot spill %d row ids to serve.rows_dir: %w", b.n, err)
	}
	b.hot = hotRows(b, keep)
	b.idsAt = int64(len(b.w)) * 4
	b.index(spillDirBits)
	b.file, b.w, b.ids, b.readErrors = f, nil, nil, st.readErrors
	st.files.Inc()
	runtime.AddCleanup(b, func(f *os.File) { f.Close(); st.files.Dec() }, f)
	return nil
}

// hotRows copies the rows keep says so of into one array of their own
// (a row slice of b.w would keep all of it alive).
func hotRows(b *rowBase, keep func(id uint64) bool) map[uint64][]float32 {
	var at []int
	for i, id := range b.ids {
		if keep(id) {
			at = append(at, i)
		}
	}
	w := make([]float32, 0, len(at)*b.stride)
	hot := make(map[uint64][]float32, len(at))
	for _, i := range at {
		w = append(w, b.w[i*b.stride:(i+1)*b.stride]...)
		hot[b.ids[i]] = w[len(w)-b.stride : len(w) : len(w)]
	}
	return hot
}

// spillStats are a replica's metrics of its spilled rows: failed reads,
// and rows files open (each is a version's base, on disk until no version
// refers to it).
type spillStats struct {
	readErrors *metrics.Counter
	files      *metrics.Gauge
}

func newSpillStats(set *metrics.Set) spillStats {
	return spillStats{readErrors: set.GetOrCreateCounter("unirec_serve_rows_read_errors_total"),
		files: set.GetOrCreateGauge("unirec_serve_rows_files", nil)}
}

// writeFloats writes v little-endian.
func writeFloats(f *os.File, v []float32) error {
	return writeChunked(f, v, func(b []byte, x float32) []byte { return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)) })
}

// writeIDs writes ids little-endian.
func writeIDs(f *os.File, ids []uint64) error {
	return writeChunked(f, ids, binary.LittleEndian.AppendUint64)
}

// writeChunked writes v encoded by put, a megabyte at a time (the
// encodings, 4 or 8 bytes, fill it exactly).
func writeChunked[T any](f *os.File, v []T, put func([]byte, T) []byte) error {
	buf := make([]byte, 0, 1<<20)
	for i, x := range v {
		buf = put(buf, x)
		if len(buf) == cap(buf) || i == len(v)-1 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// readIDs reads ids [from, to) of a spilled base into dst (8 bytes each,
// little-endian); a failed read is counted.
func (b *rowBase) readIDs(dst []byte, from, to int) ([]byte, error) {
	dst = slices.Grow(dst[:0], 8*(to-from))[:8*(to-from)]
	if _, err := b.file.ReadAt(dst, b.idsAt+8*int64(from)); err != nil {
		b.readErrors.Inc()
		return dst[:0], fmt.Errorf("cannot read row ids %d-%d of the spilled base: %w", from, to, err)
	}
	return dst, nil
}

// searchIDs finds id in ids read by readIDs: its index, and whether it is
// there.
func searchIDs(buf []byte, id uint64) (int, bool) {
	n := len(buf) / 8
	i := sort.Search(n, func(k int) bool { return binary.LittleEndian.Uint64(buf[8*k:]) >= id })
	return i, i < n && binary.LittleEndian.Uint64(buf[8*i:]) == id
}

// allIDs returns every id of the base, read from the file when spilled.
func (b *rowBase) allIDs() ([]uint64, error) {
	if b.file == nil {
		return b.ids, nil
	}
	out := make([]uint64, 0, b.n)
	var buf []byte
	const per = 1 << 17 // ids a read
	for i := 0; i < b.n; i += per {
		var err error
		if buf, err = b.readIDs(buf, i, min(b.n, i+per)); err != nil {
			return nil, err
		}
		for k := 0; k < len(buf); k += 8 {
			out = append(out, binary.LittleEndian.Uint64(buf[k:]))
		}
	}
	return out, nil
}

// readRow reads row i of a spilled base; nil when the read fails (the row
// is then served as absent, and counted).
func (b *rowBase) readRow(i int) []float32 {
	r, err := b.appendRows(make([]float32, 0, b.stride), i, i+1)
	if err != nil {
		return nil
	}
	return r
}

// appendRows appends rows [from, to) of a spilled base to dst, reading a
// megabyte at a time; a failed read is counted.
func (b *rowBase) appendRows(dst []float32, from, to int) ([]float32, error) {
	rowBytes := 4 * b.stride
	per := max(1, (1<<20)/rowBytes)
	buf := make([]byte, min(to-from, per)*rowBytes)
	for i := from; i < to; i += per {
		chunk := buf[:min(to-i, per)*rowBytes]
		if _, err := b.file.ReadAt(chunk, int64(i)*int64(rowBytes)); err != nil {
			b.readErrors.Inc()
			return dst, fmt.Errorf("cannot read rows %d-%d of the spilled base: %w", i, i+len(chunk)/rowBytes, err)
		}
		for k := 0; k < len(chunk); k += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(chunk[k:])))
		}
	}
	return dst, nil
}
