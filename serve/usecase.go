package serve

import (
	"fmt"
	"time"

	"github.com/unirec/unirec/ingest"
)

// UseCase is the serving environment of one use case: which task of the
// shared model answers it and with which knobs.
type UseCase struct {
	Name string `yaml:"name"`
	// Canvas is the task type the model scores for; defaults to Name.
	Canvas string `yaml:"canvas"`
	// DefaultK is used when a request does not say k.
	DefaultK int `yaml:"default_k"`
	// MaxK bounds a request's k.
	MaxK int `yaml:"max_k"`
	// Timeout is the default latency budget of a request.
	Timeout time.Duration `yaml:"timeout"`
	// Updates says which versions the use case takes: "realtime" (every
	// version, the default), "interval" (the newest version, at most once
	// per UpdateInterval; "hold each version for an hour" is an interval of
	// 1h) or "pinned" (only PinVersion).
	Updates        string        `yaml:"updates"`
	UpdateInterval time.Duration `yaml:"update_interval"`
	PinVersion     int64         `yaml:"pin_version"`
	// MaxStaleness bounds now minus the watermark of the model that
	// answers; 0 means no bound. Beyond it OnStale decides: "flag" (serve
	// and mark the answer stale, the default), "fallback" (answer from
	// Fallback) or "refuse" (HTTP 503).
	MaxStaleness time.Duration `yaml:"max_staleness"`
	OnStale      string        `yaml:"on_stale"`
	// Fallback is the source of fallback answers: "popularity" (default)
	// or "static" (FallbackItems, in order).
	Fallback      string   `yaml:"fallback"`
	FallbackItems []string `yaml:"fallback_items"`
	// CandidateType restricts candidates to items of this type by default
	// ("" means every item).
	CandidateType string `yaml:"candidate_type"`
	// Environment holds the serving knobs: parallelism, cache, default
	// candidates, fallback chain and business rules (environment.go).
	Environment `yaml:",inline"`

	required []string // context fields the canvas requires
}

// DefaultUseCases returns one use case per canvas.
func DefaultUseCases(reg *ingest.Registry) []UseCase {
	var out []UseCase
	for _, name := range reg.Names() {
		out = append(out, UseCase{Name: name})
	}
	return out
}

// resolve fills defaults and binds the use case to its canvas.
func (u *UseCase) resolve(reg *ingest.Registry) error {
	if u.Name == "" {
		return fmt.Errorf("serve.use_cases[].name is required")
	}
	if u.Canvas == "" {
		u.Canvas = u.Name
	}
	c := reg.Canvas(u.Canvas)
	if c == nil {
		return fmt.Errorf("serve.use_cases[%s].canvas: %q is not a configured canvas (known: %v)", u.Name, u.Canvas, reg.Names())
	}
	if u.DefaultK <= 0 {
		u.DefaultK = 10
	}
	if u.MaxK <= 0 {
		u.MaxK = 1000
	}
	if u.DefaultK > u.MaxK {
		return fmt.Errorf("serve.use_cases[%s].default_k %d exceeds max_k %d", u.Name, u.DefaultK, u.MaxK)
	}
	if u.Timeout <= 0 {
		u.Timeout = 100 * time.Millisecond
	}
	if err := u.resolvePolicy(); err != nil {
		return err
	}
	u.required = u.required[:0]
	for _, f := range c.Context {
		if f.Required {
			u.required = append(u.required, f.Name)
		}
	}
	return nil
}

// The values of UseCase.Updates, OnStale and Fallback.
const (
	UpdatesRealtime = "realtime"
	UpdatesInterval = "interval"
	UpdatesPinned   = "pinned"

	OnStaleFlag     = "flag"
	OnStaleFallback = "fallback"
	OnStaleRefuse   = "refuse"

	FallbackPopularity = "popularity"
	FallbackStatic     = "static"
)

// resolvePolicy fills the freshness policy defaults and refuses policies
// that cannot be honoured; errors name the field.
func (u *UseCase) resolvePolicy() error {
	if err := u.resolveUpdates(); err != nil {
		return err
	}
	return u.resolveStaleness()
}

func (u *UseCase) errorf(format string, args ...any) error {
	return fmt.Errorf("serve.use_cases[%s]."+format, append([]any{u.Name}, args...)...)
}

// resolveUpdates checks which versions the use case takes.
func (u *UseCase) resolveUpdates() error {
	switch u.Updates {
	case "":
		u.Updates = UpdatesRealtime
	case UpdatesRealtime:
	case UpdatesInterval:
		if u.UpdateInterval <= 0 {
			return u.errorf("update_interval must be positive with updates: interval, got %s", u.UpdateInterval)
		}
	case UpdatesPinned:
		if u.PinVersion <= 0 {
			return u.errorf("pin_version must be a version > 0 with updates: pinned")
		}
	default:
		return u.errorf("updates must be realtime, interval or pinned, got %q", u.Updates)
	}
	if u.Updates != UpdatesInterval && u.UpdateInterval != 0 {
		return u.errorf("update_interval is set but updates is %q: set updates: interval", u.Updates)
	}
	if u.Updates != UpdatesPinned && u.PinVersion != 0 {
		return u.errorf("pin_version is set but updates is %q: set updates: pinned", u.Updates)
	}
	return nil
}

// resolveStaleness checks the staleness bound, its action and the fallback.
func (u *UseCase) resolveStaleness() error {
	if u.MaxStaleness < 0 {
		return u.errorf("max_staleness must not be negative")
	}
	switch u.OnStale {
	case "":
		u.OnStale = OnStaleFlag
	case OnStaleFlag, OnStaleFallback, OnStaleRefuse:
		if u.OnStale != OnStaleFlag && u.MaxStaleness == 0 {
			return u.errorf("on_stale: %s needs max_staleness > 0", u.OnStale)
		}
	default:
		return u.errorf("on_stale must be flag, fallback or refuse, got %q", u.OnStale)
	}
	switch u.Fallback {
	case "":
		u.Fallback = FallbackPopularity
	case FallbackPopularity:
	case FallbackStatic:
		if len(u.FallbackItems) == 0 {
			return u.errorf("fallback_items must list items with fallback: static")
		}
	default:
		return u.errorf("fallback must be popularity or static, got %q", u.Fallback)
	}
	return nil
}
