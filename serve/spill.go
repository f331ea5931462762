package serve

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"

	"github.com/VictoriaMetrics/metrics"
)

// A spilled base keeps its ids (8 bytes a row) and directory in memory,
// with the item-feature rows every delta reads, and its other rows in a
// file the replica reads with pread: a replica with more users than
// memory serves them from the OS page cache, and its heap grows by about
// 16 bytes per user (measured: ids, directory, overlay) instead of the
// row's weights (serve.rows_dir).
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
	if b.file != nil || len(b.ids) == 0 {
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
		return fmt.Errorf("cannot spill %d rows to serve.rows_dir: %w", len(b.ids), err)
	}
	b.hot = hotRows(b, keep)
	b.file, b.w, b.readErrors = f, nil, st.readErrors
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

// writeFloats writes v little-endian, a megabyte at a time.
func writeFloats(f *os.File, v []float32) error {
	buf := make([]byte, 0, 1<<20)
	for i, x := range v {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(x))
		if len(buf) == cap(buf) || i == len(v)-1 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
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
