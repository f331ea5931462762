package model

import "github.com/unirec/unirec/stream"

// Capture is a consistent copy of everything serving needs from the model
// at one point of the examples log: the weights (no optimizer state), the
// per-task adapters, the item registry and per-task popularity, with the
// offsets and watermark they correspond to.
type Capture struct {
	Config    ModelConfig
	Version   int64
	Offsets   map[int32]int64
	Watermark int64 // newest event time included, unix ms
	Applied   int64
	// IDs and Weights hold the rows: row i is Weights[i*(Dim+1):(i+1)*(Dim+1)].
	IDs     []uint64
	Weights []float32
	Tasks   map[string]TaskParams
	Items   []Item
	Popular map[string][]Popular
	// Memory holds the memory lists, sorted by key (memory.go).
	Memory   []MemoryList
	Progress map[string]TaskProgress
}

// Item is one entry of the item registry.
type Item struct {
	ID   string
	Meta stream.ItemMeta
}

// Popular is an item and its popularity score in a task.
type Popular struct {
	Item  string
	Score float64
}

// PopularTopN is how many items per task a capture's popularity list holds.
const PopularTopN = 1000

// TaskProgress is the progressive-validation summary of one task.
type TaskProgress struct {
	Examples    int64   `json:"examples"`
	LogLoss     float64 `json:"logloss"`     // weighted mean over all examples
	AUC         float64 `json:"auc"`         // over the last window
	MeanPred    float64 `json:"mean_pred"`   // over the last window
	MeanLabel   float64 `json:"mean_label"`  // over the last window
	Calibration float64 `json:"calibration"` // mean_pred / mean_label
	Window      int     `json:"window"`      // examples in the window
}
