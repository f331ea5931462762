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
	// MaxStaleness flags answers of a model whose watermark is older than
	// this; 0 means no bound.
	MaxStaleness time.Duration `yaml:"max_staleness"`
	// CandidateType restricts candidates to items of this type by default
	// ("" means every item).
	CandidateType string `yaml:"candidate_type"`

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
	if u.MaxStaleness < 0 {
		return fmt.Errorf("serve.use_cases[%s].max_staleness must not be negative", u.Name)
	}
	u.required = u.required[:0]
	for _, f := range c.Context {
		if f.Required {
			u.required = append(u.required, f.Name)
		}
	}
	return nil
}
