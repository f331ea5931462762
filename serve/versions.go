package serve

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/unirec/unirec/snapshot"
)

// useCase is a configured use case and the version its freshness policy
// holds (interval and pinned policies).
type useCase struct {
	UseCase
	mu    sync.Mutex
	cur   *Model
	since time.Time // when cur was taken

	cache         *responseCache // nil without a cache TTL
	scoreEstimate atomic.Int64   // moving average of scoring time, ns
}

// live is the version realtime use cases serve: the rollback target while
// a rollback is in force, else the newest good version.
func (r *Replica) live() *Model {
	if m := r.hold.Load(); m != nil {
		return m
	}
	return r.good.Load()
}

// modelFor returns the version u's policy serves at now, or nil and the
// fallback reason. An interval use case holding a version that learned
// nothing (a trainer's first, empty snapshot) takes the next one at once
// rather than serve an untrained model for a whole interval.
func (r *Replica) modelFor(u *useCase, now time.Time) (*Model, string) {
	live := r.live()
	if live == nil {
		return nil, "no_model"
	}
	switch u.Updates {
	case UpdatesInterval:
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.cur == nil || (u.cur != live && (now.Sub(u.since) >= u.UpdateInterval || u.cur.Applied == 0)) {
			u.cur, u.since = live, now
		}
		return u.cur, ""
	case UpdatesPinned:
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.cur == nil {
			return nil, "pinned_version_unavailable"
		}
		return u.cur, ""
	}
	return live, ""
}

// remember keeps m among the recent versions and hands it to use cases
// pinned to it, and holds it when it is the version of a rollback read
// back from the state file. Callers hold r.mu.
func (r *Replica) remember(m *Model) {
	r.restore(m)
	r.history = append(r.history, m)
	if n := len(r.history) - r.opts.KeepVersions; n > 0 {
		r.history = slices.Delete(r.history, 0, n)
	}
	for _, u := range r.useCases {
		if u.Updates == UpdatesPinned && u.PinVersion == m.Version {
			u.mu.Lock()
			u.cur, u.since = m, r.opts.Now()
			u.mu.Unlock()
		}
	}
}

// Versions returns the versions available for rollback, oldest first.
func (r *Replica) Versions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]int64, len(r.history))
	for i, m := range r.history {
		out[i] = m.Version
	}
	return out
}

// Rollback makes version the live one until Resume: realtime and interval
// use cases serve it at once, while new versions keep being applied to the
// head behind it. It fails when the version is not among the recent ones.
func (r *Replica) Rollback(version int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.history, func(m *Model) bool { return m.Version == version })
	if i < 0 {
		vs := make([]int64, len(r.history))
		for j, m := range r.history {
			vs[j] = m.Version
		}
		return fmt.Errorf("cannot roll back to version %d: not among the recent versions %v", version, vs)
	}
	m := r.history[i]
	if err := writeHeld(r.opts.StateFile, heldState{Version: m.Version, FullOffset: m.FullOffset}); err != nil {
		return err
	}
	r.pending = nil
	r.holdLocked(m)
	r.opts.Metrics.GetOrCreateCounter("unirec_serve_rollbacks_total").Inc()
	r.logf("serve: rolled back to version %d; new versions are applied behind it until resume", version)
	return nil
}

// holdLocked makes m live for realtime and interval use cases. Callers
// hold r.mu.
func (r *Replica) holdLocked(m *Model) {
	r.hold.Store(m)
	now := r.opts.Now()
	for _, u := range r.useCases {
		if u.Updates == UpdatesInterval {
			u.mu.Lock()
			u.cur, u.since = m, now
			u.mu.Unlock()
		}
	}
	r.versionG.Set(float64(m.Version))
}

// Resume ends a rollback: the newest version is live again.
func (r *Replica) Resume() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := removeHeld(r.opts.StateFile); err != nil {
		r.logf("serve: %v; a restart would roll back again", err)
	}
	r.pending = nil
	r.hold.Store(nil)
	if h := r.good.Load(); h != nil {
		r.versionG.Set(float64(h.Version))
	}
	r.logf("serve: resumed on the newest version")
}

// Control carries out an operator command read from the snapshots topic.
func (r *Replica) Control(c snapshot.Control) {
	switch c.Action {
	case snapshot.ActionRollback:
		if err := r.Rollback(c.Version); err != nil {
			r.logf("serve: control record: %v", err)
		}
	case snapshot.ActionResume:
		r.Resume()
	default:
		r.logf("serve: ignoring unknown control action %q", c.Action)
	}
}

// staleness is now minus m's watermark (0 when the watermark is ahead of
// now), and whether that is beyond u's max_staleness: the one rule of the
// recommend check, the answer's model info and the use-case states.
func (u *useCase) staleness(m *Model, now time.Time) (time.Duration, bool) {
	age := max(now.Sub(m.Watermark), 0)
	return age, u.MaxStaleness > 0 && age > u.MaxStaleness
}

// FreshnessPolicy is a use case's freshness policy as the API shows it
// (in GET /v1/use-cases and GET /v1/model).
type FreshnessPolicy struct {
	Updates        string `json:"updates"`
	UpdateInterval string `json:"update_interval,omitempty"`
	PinVersion     int64  `json:"pin_version,omitempty"`
	MaxStaleness   string `json:"max_staleness,omitempty"`
	OnStale        string `json:"on_stale"`
}

func freshnessPolicy(u UseCase) FreshnessPolicy {
	return FreshnessPolicy{Updates: u.Updates, PinVersion: u.PinVersion, OnStale: u.OnStale,
		UpdateInterval: durationOrEmpty(u.UpdateInterval.String(), u.UpdateInterval != 0),
		MaxStaleness:   durationOrEmpty(u.MaxStaleness.String(), u.MaxStaleness != 0)}
}

// UseCaseState is what one use case serves now, with its freshness policy
// (GET /v1/model, and the status page and `unirec status` through it).
type UseCaseState struct {
	Name string `json:"name"`
	FreshnessPolicy
	// Policy is the freshness policy in one line, e.g. "interval 1h0m0s,
	// max staleness 2h0m0s, on stale: fallback".
	Policy      string `json:"policy"`
	Version     int64  `json:"version"`
	StalenessMS int64  `json:"staleness_ms"`
	Stale       bool   `json:"stale"`
	// Unavailable is the fallback reason when no version may serve it.
	Unavailable string `json:"unavailable,omitempty"`
}

// UseCaseStates returns, per use case in name order, the version its
// policy serves at now and that version's staleness.
func (r *Replica) UseCaseStates() []UseCaseState {
	now := r.opts.Now()
	out := make([]UseCaseState, 0, len(r.useCases))
	for _, name := range r.useCaseNames() {
		u := r.useCases[name]
		s := UseCaseState{Name: name, FreshnessPolicy: freshnessPolicy(u.UseCase), Policy: policyLine(u.UseCase)}
		if m, why := r.modelFor(u, now); m != nil {
			age, stale := u.staleness(m, now)
			s.Version, s.StalenessMS, s.Stale = m.Version, age.Milliseconds(), stale
		} else {
			s.Unavailable = why
		}
		out = append(out, s)
	}
	return out
}

func policyLine(u UseCase) string {
	p := u.Updates
	switch u.Updates {
	case UpdatesInterval:
		p += " " + u.UpdateInterval.String()
	case UpdatesPinned:
		p += fmt.Sprintf(" to version %d", u.PinVersion)
	}
	if u.MaxStaleness > 0 {
		p += fmt.Sprintf(", max staleness %s, on stale: %s", u.MaxStaleness, u.OnStale)
	}
	return p
}
