package serve

import (
	"errors"
	"fmt"
	"math"

	"github.com/unirec/unirec/snapshot"
)

// Checks are the sanity checks a version passes before it goes live on a
// replica (Ekko-style bad-update protection). Checksums and HMACs are
// verified by the subscriber before; these look at the values.
type Checks struct {
	// MaxNorm bounds the L2 norm of every row (weights and bias) and of
	// every task adapter.
	MaxNorm float64 `yaml:"max_norm"`
	// MaxAUCDrop rejects a version whose progressive AUC of any task fell
	// by more than this (absolute) versus the last good version. Metrics
	// are compared only while the two windows of recent examples overlap by
	// at least half: a sudden collapse is caught, while a slow drift of the
	// data (and so of the metrics) cannot keep every later version out.
	MaxAUCDrop float64 `yaml:"max_auc_drop"`
	// MaxLogLossRise rejects a version whose progressive log loss of any
	// task rose by more than this fraction versus the last good version;
	// 0 turns the check off (log loss moves with the label mix, e.g. when
	// closed windows add negatives).
	MaxLogLossRise float64 `yaml:"max_logloss_rise"`
	// MinWindow is how many recent examples a task needs in both versions
	// before its metrics are compared.
	MinWindow int `yaml:"min_window"`
}

// DefaultChecks returns the defaults documented in the README.
func DefaultChecks() Checks {
	return Checks{MaxNorm: 100, MaxAUCDrop: 0.1, MinWindow: 1000}
}

// Validate checks the bounds; errors name the field.
func (c Checks) Validate() error {
	switch {
	case c.MaxNorm <= 0:
		return errors.New("serve.checks.max_norm must be positive")
	case c.MaxAUCDrop <= 0 || c.MaxAUCDrop > 1:
		return errors.New("serve.checks.max_auc_drop must be in (0, 1]")
	case c.MaxLogLossRise < 0:
		return errors.New("serve.checks.max_logloss_rise must not be negative (0 turns it off)")
	case c.MinWindow < 0:
		return errors.New("serve.checks.min_window must not be negative")
	}
	return nil
}

// ErrBadUpdate is returned for a version that fails a sanity check.
var ErrBadUpdate = errors.New("bad update")

// check runs every check on next, the version a snapshot with delta d
// leads to, against good, the last version that passed (nil for none), and
// returns the reason for a rejection. Values are checked for the rows the
// delta changed; rows found bad earlier stay bad in next until a delta
// replaces or deletes them.
func (c Checks) check(good, next *Model, d *snapshot.Delta) (reason string, err error) {
	next.bad = c.badRows(next, d)
	for id, why := range next.bad {
		return why, fmt.Errorf("%w: version %d row %#x: %s (%d bad rows)", ErrBadUpdate, next.Version, id, why, len(next.bad))
	}
	for name, tp := range next.tasks {
		for _, v := range [][]float32{tp.Scale, tp.Shift, {tp.Bias}} {
			if why := c.values(v); why != "" {
				return why, fmt.Errorf("%w: version %d task %q: %s", ErrBadUpdate, next.Version, name, why)
			}
		}
	}
	if good == nil {
		return "", nil
	}
	return c.progress(good, next)
}

// badRows carries the bad rows of the previous version over to next,
// minus those the delta changed or deleted, plus the delta's bad rows.
func (c Checks) badRows(next *Model, d *snapshot.Delta) map[uint64]string {
	bad := map[uint64]string{}
	if d != nil && next.Kind != snapshot.KindFull {
		for id, why := range next.bad {
			bad[id] = why
		}
		for _, ids := range [][]uint64{d.IDs, d.Deleted} {
			for _, id := range ids {
				delete(bad, id)
			}
		}
	}
	for i := range d.IDs {
		if why := c.values(d.Row(i)); why != "" {
			bad[d.IDs[i]] = why
		}
	}
	return bad
}

// progress compares the trainer's progressive metrics of next with good.
func (c Checks) progress(good, next *Model) (string, error) {
	for task, now := range next.Progress {
		before, ok := good.Progress[task]
		if !ok || now.Window < c.MinWindow || before.Window < c.MinWindow || now.Examples-before.Examples > int64(before.Window/2) {
			continue // too few examples, or windows that overlap by less than half: not comparable
		}
		if before.AUC-now.AUC > c.MaxAUCDrop {
			return "auc_drop", fmt.Errorf("%w: version %d task %q progressive AUC fell from %.3f (version %d) to %.3f (max drop %.3f)",
				ErrBadUpdate, next.Version, task, before.AUC, good.Version, now.AUC, c.MaxAUCDrop)
		}
		if c.MaxLogLossRise > 0 && before.LogLoss > 0 && now.LogLoss > before.LogLoss*(1+c.MaxLogLossRise) {
			return "logloss_rise", fmt.Errorf("%w: version %d task %q progressive log loss rose from %.4f (version %d) to %.4f (max rise %.0f%%)",
				ErrBadUpdate, next.Version, task, before.LogLoss, good.Version, now.LogLoss, 100*c.MaxLogLossRise)
		}
	}
	return "", nil
}

// values says what is wrong with a vector: "nan_or_inf", "norm", or "".
func (c Checks) values(v []float32) string {
	var sq float64
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "nan_or_inf"
		}
		sq += f * f
	}
	if math.Sqrt(sq) > c.MaxNorm {
		return "norm"
	}
	return ""
}
