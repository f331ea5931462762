package model

import (
	"fmt"
	"math"
)

// ModelConfig is the architecture and the learning hyper-parameters of the
// shared model. A snapshot carries it so serving scores the same way.
type ModelConfig struct {
	// Dim is the embedding dimension; every row holds Dim weights and a bias.
	Dim          int     `yaml:"dim" json:"dim"`
	LearningRate float64 `yaml:"learning_rate" json:"learning_rate"`
	// DenseLearningRate is the AdaGrad rate of the per-task adapters.
	DenseLearningRate float64 `yaml:"dense_learning_rate" json:"dense_learning_rate"`
	L2                float64 `yaml:"l2" json:"l2"`
	// GradientClip bounds |dLoss/dLogit| of one example.
	GradientClip float64 `yaml:"gradient_clip" json:"gradient_clip"`
	// InitScale is the half-width of the uniform initialisation of rows.
	InitScale float64 `yaml:"init_scale" json:"init_scale"`
	// Isolated trains one independent model per task (the baseline that
	// consolidation is measured against): no parameter is shared.
	Isolated bool `yaml:"isolated" json:"isolated"`
	// Optimizer of the embedding rows: "rowwise" AdaGrad (one accumulator
	// per row, the default) or "coordinate" (one per weight).
	Optimizer string `yaml:"optimizer" json:"optimizer"`
	// LogQCorrection trains on z - ln(SampleProb) for examples drawn with
	// probability SampleProb > 0 (sampled negatives); see DESIGN.md.
	LogQCorrection bool `yaml:"log_q_correction" json:"log_q_correction"`
	// Forget multiplies a row's AdaGrad accumulators before each update;
	// below 1 its steps stop shrinking (an RMSProp-like recency), 1 is
	// plain AdaGrad.
	Forget float64 `yaml:"forget" json:"forget"`
	// Memory is the memorization of context values' items (memory.go).
	Memory MemoryConfig `yaml:"memory" json:"memory"`
	// Step is the mini-batch of the trainer: up to Step consecutive
	// examples of one Kafka transaction are scored against the model as
	// it was before them and their updates are then applied in log order
	// (online/step.go), in parallel over rows. 0 or 1 learns example by
	// example.
	Step int `yaml:"step" json:"step"`
}

// MaxStep bounds ModelConfig.Step.
const MaxStep = 4096

// DefaultModelConfig returns the defaults documented in the README.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{Dim: 32, LearningRate: 0.05, DenseLearningRate: 0.01, L2: 1e-6, GradientClip: 10, InitScale: 0.1,
		Optimizer: OptimizerRowwise, LogQCorrection: true, Forget: 1, Memory: DefaultMemoryConfig()}
}

// Validate checks the configuration; errors name the field.
func (c ModelConfig) Validate() error {
	switch {
	case c.Dim < 2 || c.Dim > 1024:
		return fmt.Errorf("model.dim must be in [2, 1024], got %d", c.Dim)
	case c.LearningRate <= 0:
		return fmt.Errorf("model.learning_rate must be positive")
	case c.DenseLearningRate <= 0:
		return fmt.Errorf("model.dense_learning_rate must be positive")
	case c.L2 < 0:
		return fmt.Errorf("model.l2 must not be negative")
	case c.GradientClip <= 0:
		return fmt.Errorf("model.gradient_clip must be positive")
	case c.InitScale <= 0:
		return fmt.Errorf("model.init_scale must be positive")
	case c.Forget < 0 || c.Forget > 1:
		return fmt.Errorf("model.forget must be in [0, 1], got %g", c.Forget)
	case c.Step < 0 || c.Step > MaxStep:
		return fmt.Errorf("model.step must be in [0, %d], got %d", MaxStep, c.Step)
	case c.Optimizer != "" && c.Optimizer != OptimizerRowwise && c.Optimizer != OptimizerCoordinate:
		return fmt.Errorf("model.optimizer must be %q or %q, got %q", OptimizerRowwise, OptimizerCoordinate, c.Optimizer)
	}
	return c.Memory.Validate()
}

// TaskParams are the dense, task-conditioning parameters of one task: a
// diagonal scale and a shift applied to the shared context vector, and a
// bias. They are the "small per-task output adapters". Memory holds the
// weight of each context field's memory feature (memory.go).
type TaskParams struct {
	Scale  []float32
	Shift  []float32
	Bias   float32
	Memory map[string]float32
}

// NewTaskParams returns the identity adapter.
func NewTaskParams(dim int) *TaskParams {
	t := &TaskParams{Scale: make([]float32, dim), Shift: make([]float32, dim), Memory: map[string]float32{}}
	for i := range t.Scale {
		t.Scale[i] = 1
	}
	return t
}

// ContextVector computes the task-conditioned context vector of a request
// from the rows of its features (nil rows are features without parameters)
// into dst (len dim), and returns the summed bias of the context side
// (feature biases plus the task bias). c receives the shared, unconditioned
// vector when non-nil.
func ContextVector(dst, c []float32, tp *TaskParams, rows [][]float32) float32 {
	dim := len(dst)
	if c == nil {
		c = make([]float32, dim)
	}
	clear(c)
	var bias float32
	n := 0
	for _, r := range rows {
		if r == nil {
			continue
		}
		add(r[:dim], c)
		bias += r[dim]
		n++
	}
	if n > 0 {
		inv := float32(1 / math.Sqrt(float64(n)))
		for i := range c {
			c[i] *= inv
		}
	}
	for i := range dst {
		dst[i] = tp.Scale[i]*c[i] + tp.Shift[i]
	}
	return bias + tp.Bias
}

// ItemVector computes an item's vector into dst (len dim+1, the last
// coordinate its bias) from the rows of its features, in Featurizer.Item
// order: the item id's row counts fully, the metadata rows (type,
// categories, title tokens) are summed and scaled by 1/sqrt(m) on top of
// it, so an item with history is dominated by its own row and one with
// metadata only still gets a vector (cold start). The bias (the item's
// prior) is the id row's alone: metadata biases would lend every rare item
// the popularity of its genre and title words.
func ItemVector(dst []float32, rows [][]float32) {
	dim := len(dst) - 1
	clear(dst)
	if len(rows) == 0 {
		return
	}
	if inv := MetaScale(rows); inv > 0 {
		for _, r := range rows[ItemIDRows:] {
			if r != nil {
				add(r[:dim], dst[:dim])
			}
		}
		for i := range dst[:dim] {
			dst[i] *= inv
		}
	}
	for _, r := range rows[:min(ItemIDRows, len(rows))] {
		if r != nil {
			add(r[:dim+1], dst)
		}
	}
}

// ItemIDRows is how many leading rows of an item are its identity (the
// item id) rather than metadata.
const ItemIDRows = 1

// MetaScale is 1/sqrt(m) for the m metadata rows present (rows[1:]), 0
// when there are none.
func MetaScale(rows [][]float32) float32 {
	if len(rows) <= ItemIDRows {
		return 0
	}
	m := 0
	for _, r := range rows[ItemIDRows:] {
		if r != nil {
			m++
		}
	}
	if m == 0 {
		return 0
	}
	return float32(1 / math.Sqrt(float64(m)))
}

// Logit scores a context vector (with its bias) against an item vector.
func Logit(ctx []float32, ctxBias float32, item []float32) float32 {
	dim := len(ctx)
	return dot(ctx, item[:dim]) + item[dim] + ctxBias
}

// Sigmoid is the logistic function, safe for large |z|.
func Sigmoid(z float32) float32 {
	if z >= 0 {
		return float32(1 / (1 + math.Exp(-float64(z))))
	}
	e := math.Exp(float64(z))
	return float32(e / (1 + e))
}

// Optimizers of the embedding rows.
const (
	// OptimizerRowwise keeps one AdaGrad accumulator per row (the mean
	// squared gradient of its weights) and one for its bias: 2 floats.
	OptimizerRowwise = "rowwise"
	// OptimizerCoordinate keeps one accumulator per weight: Dim+1 floats.
	OptimizerCoordinate = "coordinate"
)

// Accumulators is how many optimizer floats a row carries.
func (c ModelConfig) Accumulators() int {
	if c.Optimizer == OptimizerCoordinate {
		return c.Dim + 1
	}
	return 2
}

// TrainingLogit is the logit the loss sees: z - ln(q) for an example drawn
// with probability q (a sampled negative), z otherwise. See DESIGN.md.
func (c ModelConfig) TrainingLogit(z, sampleProb float32) float32 {
	if c.LogQCorrection && sampleProb > 0 && sampleProb < 1 {
		return z - float32(math.Log(float64(sampleProb)))
	}
	return z
}

// Gradient returns dLoss/dLogit of a weighted logistic loss, clipped, and
// false when it is not finite (the example is then not learned from).
func (c ModelConfig) Gradient(p, label, weight float32) (float32, bool) {
	dz := weight * (p - label)
	if math.IsNaN(float64(dz)) || math.IsInf(float64(dz), 0) {
		return 0, false
	}
	clip := float32(c.GradientClip)
	return min(max(dz, -clip), clip), true
}
