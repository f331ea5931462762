package online

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Pebble treats a failed write or sync of its write-ahead log as fatal:
// it panics, from a place where the panic ends the process (a full disk,
// ENOSPC, or a failing one, EIO, while a commit rotates the log), and the
// process dies printing the error as a bare pointer. writeErrFS reports
// every failed write, sync or preallocation first, naming the store, the
// file, the operation and the cause, so the operator learns why; the
// store keeps its last commit (rows and offsets in one synced batch) and a
// restart resumes from it (`TestStoreFaultsStopTheTrainerAndResumeExactly`).
// The same holds for its MANIFEST (Pebble's Fatalf ends the process).
//
// A failed write of a table (a flush or compaction) is not fatal: Pebble
// retries it at once, forever, while commits go on into its log and
// memtables (until it stalls writes), and it succeeds once the disk is
// back. Unchecked that retry spins a core and logs two lines per attempt
// (40,000 attempts in 4 s, measured): writeErrFS backs a failed table off
// (tableBackoff, doubling to maxTableBackoff, reset by a table that writes)
// and the report is logged at most once a second with the count of the
// failures since (`TestStoreTableFaultIsRetriedAndLosesNothing`).

const (
	tableBackoff    = 50 * time.Millisecond
	maxTableBackoff = 2 * time.Second
)

// writeErrFS wraps fs: files it creates or opens report failed writes to
// report.
type writeErrFS struct {
	vfs.FS
	report  func(op, path string, err error)
	written func() // a table was synced
}

func (fs writeErrFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		fs.report("create", name, err)
		return nil, err
	}
	return writeErrFile{File: f, name: name, report: fs.report, written: fs.written}, nil
}

// isTable says whether path is one of Pebble's tables (flushes and
// compactions write them, in the background).
func isTable(path string) bool { return strings.HasSuffix(path, ".sst") }

// reporter logs the store's write failures, at most once a second per
// kind of file, and backs failed table writes off.
type reporter struct {
	dir  string
	logf func(string, ...any)

	mu         sync.Mutex
	last       map[bool]time.Time // by isTable
	suppressed map[bool]int
	backoff    time.Duration
}

func (r *reporter) report(op, path string, err error) {
	table := isTable(path)
	r.mu.Lock()
	now := time.Now()
	log := now.Sub(r.last[table]) >= time.Second
	more := r.suppressed[table]
	if log {
		r.last[table], r.suppressed[table] = now, 0
	} else {
		r.suppressed[table]++
	}
	wait := time.Duration(0)
	if table {
		r.backoff = min(max(2*r.backoff, tableBackoff), maxTableBackoff)
		wait = r.backoff
	}
	r.mu.Unlock()
	if log {
		then := "Pebble stops the trainer; the store keeps its last commit and a restart resumes from it"
		if table {
			then = "Pebble retries it, backed off; commits go on into its log until the disk is back"
		}
		since := ""
		if more > 0 {
			since = fmt.Sprintf("; %d more failures since the last report", more)
		}
		r.logf("%s", fmt.Sprintf("parameter store at %q: cannot %s %s: %v (%s%s)", r.dir, op, path, err, then, since))
	}
	time.Sleep(wait)
}

// tableWritten resets the backoff once a table is written.
func (r *reporter) tableWritten() {
	r.mu.Lock()
	r.backoff = 0
	r.mu.Unlock()
}

func (fs writeErrFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.wrap(f, name, err)
}

func (fs writeErrFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, category, opts...)
	return fs.wrap(f, name, err)
}

func (fs writeErrFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.wrap(f, newname, err)
}

// writeErrFile reports the failed writes and syncs of one file.
type writeErrFile struct {
	vfs.File
	name    string
	report  func(op, path string, err error)
	written func()
}

func (f writeErrFile) check(op string, err error) error {
	if err != nil {
		f.report(op, f.name, err)
	}
	return err
}

func (f writeErrFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.check("write", err)
}

func (f writeErrFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.check("write", err)
}

func (f writeErrFile) Preallocate(off, n int64) error {
	return f.check("preallocate", f.File.Preallocate(off, n))
}

func (f writeErrFile) Sync() error { return f.synced(f.File.Sync()) }

func (f writeErrFile) SyncData() error { return f.synced(f.File.SyncData()) }

// synced reports a failed sync; a table synced resets the backoff.
func (f writeErrFile) synced(err error) error {
	if f.check("sync", err) == nil && isTable(f.name) {
		f.written()
	}
	return err
}

func (f writeErrFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.check("sync", err)
}

// reportWriteErrors wraps fs (nil: the operating system's) so that every
// failed write of the store at dir is logged with logf first (at most once
// a second), and failed table writes are backed off.
func reportWriteErrors(fs vfs.FS, dir string, logf func(string, ...any)) vfs.FS {
	if fs == nil {
		fs = vfs.Default
	}
	r := &reporter{dir: dir, logf: logf, last: map[bool]time.Time{}, suppressed: map[bool]int{}}
	return writeErrFS{FS: fs, report: r.report, written: r.tableWritten}
}
