package online

import (
	"fmt"

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

// writeErrFS wraps fs: files it creates or opens report failed writes to
// report.
type writeErrFS struct {
	vfs.FS
	report func(op, path string, err error)
}

func (fs writeErrFS) wrap(f vfs.File, name string, err error) (vfs.File, error) {
	if err != nil {
		fs.report("create", name, err)
		return nil, err
	}
	return writeErrFile{File: f, name: name, report: fs.report}, nil
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
	name   string
	report func(op, path string, err error)
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

func (f writeErrFile) Sync() error { return f.check("sync", f.File.Sync()) }

func (f writeErrFile) SyncData() error { return f.check("sync", f.File.SyncData()) }

func (f writeErrFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.check("sync", err)
}

// reportWriteErrors wraps fs (nil: the operating system's) so that every
// failed write of the store at dir is logged with logf first.
func reportWriteErrors(fs vfs.FS, dir string, logf func(string, ...any)) vfs.FS {
	if fs == nil {
		fs = vfs.Default
	}
	return writeErrFS{FS: fs, report: func(op, path string, err error) {
		logf("%s", fmt.Sprintf("parameter store at %q: cannot %s %s: %v (Pebble stops the trainer; the store keeps its last commit and a restart resumes from it)", dir, op, path, err))
	}}
}
