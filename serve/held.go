package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// heldState is a rollback in force, as the state file keeps it: the
// version held and the offset of the full snapshot its chain starts from.
type heldState struct {
	Version    int64 `json:"version"`
	FullOffset int64 `json:"full_offset"`
}

// readHeld reads the rollback kept in file; nil when there is none.
func readHeld(file string) (*heldState, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read the replica's rollback state %q: %w", file, err)
	}
	var h heldState
	if err := json.Unmarshal(b, &h); err != nil || h.Version <= 0 {
		return nil, fmt.Errorf("cannot read the replica's rollback state %q (%v): fix or delete it (deleting it ends the rollback)", file, err)
	}
	return &h, nil
}

// writeHeld keeps h in file (written aside, synced, renamed), so a crash
// leaves the old state or the new one.
func writeHeld(file string, h heldState) error {
	if file == "" {
		return nil
	}
	b, _ := json.Marshal(h)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("cannot keep the rollback: %w", err)
	}
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("cannot keep the rollback: %w", err)
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, file)
	}
	if err != nil {
		return fmt.Errorf("cannot keep the rollback in %q: %w", file, err)
	}
	return nil
}

// removeHeld forgets the rollback kept in file.
func removeHeld(file string) error {
	if file == "" {
		return nil
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove the rollback state %q: %w", file, err)
	}
	return nil
}

// RestoreFrom returns the snapshots-topic offset a restarted replica must
// read from to rebuild the version of the rollback it kept (the offset of
// that version's full snapshot), and whether there is one.
func (r *Replica) RestoreFrom() (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil || r.pending.FullOffset < 0 {
		return 0, false
	}
	return r.pending.FullOffset, true
}

// restore holds m when it is the version of the kept rollback. A version
// above it means that version cannot be rebuilt (its full snapshot left
// the topic): the rollback ends, loudly. Callers hold r.mu.
func (r *Replica) restore(m *Model) {
	switch {
	case r.pending == nil || m.Version < r.pending.Version:
		return
	case m.Version == r.pending.Version:
		r.holdLocked(m)
		r.logf("serve: rollback to version %d restored from %s; new versions are applied behind it until resume", m.Version, r.opts.StateFile)
	default:
		r.logf("serve: cannot restore the rollback to version %d kept in %s: the first version rebuilt is %d (its full snapshot is no longer on the topic); serving the newest version",
			r.pending.Version, r.opts.StateFile, m.Version)
		if err := removeHeld(r.opts.StateFile); err != nil {
			r.logf("serve: %v", err)
		}
	}
	r.pending = nil
}
