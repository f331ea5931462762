package ingest

import (
	"fmt"
	"sort"
	"time"
)

// Canvas is the configuration of one use case (surface): which context
// fields it carries, how its actions become labels, how long an impression
// waits for an engagement, and how its examples are stratified. A new canvas
// is onboarded by adding one of these to the config file.
type Canvas struct {
	Name string `yaml:"name"`
	// Context lists the context fields this canvas sends.
	Context []ContextField `yaml:"context"`
	// AttributionWindow is how long after an impression (in event time) an
	// engagement still counts for it.
	AttributionWindow time.Duration `yaml:"attribution_window"`
	// Actions maps each action name to its label and weight. "impression"
	// must not be listed: impressions are exposures, labelled by the join.
	Actions map[string]Action `yaml:"actions"`
	// NegativeKeepRate keeps this fraction of unengaged impressions
	// (stratification); 1 keeps all.
	NegativeKeepRate float64 `yaml:"negative_keep_rate"`
	// Weight multiplies the weight of every example of this canvas.
	Weight float64 `yaml:"weight"`
	// EngagementOnly marks a canvas that logs no impressions: each positive
	// engagement gets Negatives sampled negative items, drawn by
	// NegativeSampler ("uniform" or "popularity" over the items engaged
	// with so far), with the draw probability in Example.SampleProb.
	EngagementOnly  bool   `yaml:"engagement_only"`
	Negatives       int    `yaml:"negatives"`
	NegativeSampler string `yaml:"negative_sampler"`
}

// ContextField is one request-context field of a canvas.
type ContextField struct {
	Name     string `yaml:"name"`
	Required bool   `yaml:"required"`
	// Default is the sentinel used when the field is absent.
	Default string `yaml:"default"`
}

// Action is the label an action gives its (request, item) pair.
type Action struct {
	Positive bool    `yaml:"positive"`
	Weight   float64 `yaml:"weight"`
}

// ActionImpression is the exposure action.
const ActionImpression = "impression"

// DefaultActions is the action table of the built-in canvases: play is the
// strongest signal, then click, then add_to_list; dismiss is an explicit
// negative.
func DefaultActions() map[string]Action {
	return map[string]Action{
		"play":        {Positive: true, Weight: 2},
		"click":       {Positive: true, Weight: 1},
		"add_to_list": {Positive: true, Weight: 0.5},
		"dismiss":     {Positive: false, Weight: 1},
	}
}

// DefaultCanvases returns the four built-in canvases.
func DefaultCanvases() []Canvas {
	base := func(name string, fields ...ContextField) Canvas {
		all := append([]ContextField{{Name: "user_id", Required: true}}, fields...)
		all = append(all, ContextField{Name: "country"}, ContextField{Name: "language"}, ContextField{Name: "device"})
		return Canvas{Name: name, Context: all, AttributionWindow: 30 * time.Second,
			Actions: DefaultActions(), NegativeKeepRate: 1, Weight: 1}
	}
	return []Canvas{
		base("notifications"),
		base("related_items", ContextField{Name: "source_item_id", Required: true}),
		base("search", ContextField{Name: "query", Required: true}),
		base("category_exploration", ContextField{Name: "category", Required: true}),
	}
}

// SentinelDefault is the value of a context field a canvas lacks.
const SentinelDefault = "<none>"

// MaxWeight bounds canvas and action weights, so their product is a finite
// float32 example weight.
const MaxWeight = 1e6

// validWeight says w is in (0, MaxWeight]: NaN and infinities fail (a
// comparison with NaN is false, so "w <= 0" let them through).
func validWeight(w float64) bool { return w > 0 && w <= MaxWeight }

// Validate checks one canvas definition; errors name the field.
func (c *Canvas) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("canvases[].name is required")
	}
	if c.AttributionWindow <= 0 {
		return fmt.Errorf("canvases[%s].attribution_window must be positive", c.Name)
	}
	if len(c.Actions) == 0 {
		return fmt.Errorf("canvases[%s].actions must list at least one action", c.Name)
	}
	for name, a := range c.Actions {
		if name == ActionImpression {
			return fmt.Errorf("canvases[%s].actions: %q is implicit and must not be listed", c.Name, name)
		}
		if !validWeight(a.Weight) {
			return fmt.Errorf("canvases[%s].actions[%s].weight must be in (0, %g], got %v", c.Name, name, MaxWeight, a.Weight)
		}
	}
	if !(c.NegativeKeepRate > 0 && c.NegativeKeepRate <= 1) { // NaN fails too
		return fmt.Errorf("canvases[%s].negative_keep_rate must be in (0, 1]", c.Name)
	}
	if !validWeight(c.Weight) {
		return fmt.Errorf("canvases[%s].weight must be in (0, %g], got %v", c.Name, MaxWeight, c.Weight)
	}
	if c.Negatives < 0 || c.Negatives > 100 {
		return fmt.Errorf("canvases[%s].negatives must be in [0, 100], got %d", c.Name, c.Negatives)
	}
	if c.Negatives > 0 && !c.EngagementOnly {
		return fmt.Errorf("canvases[%s].negatives needs engagement_only: true (impressions give real negatives)", c.Name)
	}
	switch c.NegativeSampler {
	case "", SamplerUniform, SamplerPopularity:
	default:
		return fmt.Errorf("canvases[%s].negative_sampler must be %q or %q, got %q", c.Name, SamplerUniform, SamplerPopularity, c.NegativeSampler)
	}
	seen := map[string]bool{}
	for _, f := range c.Context {
		if f.Name == "" {
			return fmt.Errorf("canvases[%s].context[].name is required", c.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("canvases[%s].context: field %q listed twice", c.Name, f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// Registry holds the configured canvases and the unified context schema: the
// union of every canvas' context fields.
type Registry struct {
	canvases map[string]*Canvas
	fields   []string // unified context field names, sorted
	defaults map[string]string
}

// NewRegistry validates the canvases and builds the unified schema.
func NewRegistry(canvases []Canvas) (*Registry, error) {
	if len(canvases) == 0 {
		return nil, fmt.Errorf("canvases: at least one canvas is required")
	}
	r := &Registry{canvases: map[string]*Canvas{}, defaults: map[string]string{}}
	for i := range canvases {
		c := canvases[i]
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if r.canvases[c.Name] != nil {
			return nil, fmt.Errorf("canvases: %q is defined twice", c.Name)
		}
		r.canvases[c.Name] = &c
		for _, f := range c.Context {
			if _, ok := r.defaults[f.Name]; !ok {
				r.fields = append(r.fields, f.Name)
				r.defaults[f.Name] = SentinelDefault
			}
			if f.Default != "" {
				r.defaults[f.Name] = f.Default
			}
		}
	}
	sort.Strings(r.fields)
	return r, nil
}

// Canvas returns the named canvas, or nil.
func (r *Registry) Canvas(name string) *Canvas { return r.canvases[name] }

// Names returns the canvas names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.canvases))
	for n := range r.canvases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Fields returns the unified context field names, sorted.
func (r *Registry) Fields() []string { return r.fields }
