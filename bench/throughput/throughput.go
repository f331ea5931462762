// Package throughput measures how many records per second a stage of
// unirec sustains on the embedded broker, next to two baselines measured in
// the same run: the raw franz-go consume rate of the same topic (the
// ceiling) and a floor that runs the stage's machinery without its logic
// (ingest: the same exactly-once loop copying each event to one output
// partition; trainer: decoding and featurizing the examples without
// learning). `unirec bench throughput` and the Go benchmarks of bench/
// (`make bench-ingest`, `make bench-trainer`) both call it.
//
// It measures and reports; it never asserts a rate.
package throughput

import (
	"runtime/debug"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// Result is what one stage's run measured. Rates are records per second.
type Result struct {
	Stage string `json:"stage"`
	// CPUs is GOMAXPROCS during the run (RunReport's cpus).
	CPUs       int     `json:"cpus"`
	Records    int     `json:"records"`
	Rate       float64 `json:"rate"`
	RawRate    float64 `json:"raw_consume_rate"` // plain franz-go consumer, same topic
	RawRatio   float64 `json:"ratio_to_raw"`     // Rate / RawRate
	Floor      string  `json:"floor"`            // what the floor runs
	FloorRate  float64 `json:"floor_rate"`
	FloorRatio float64 `json:"ratio_to_floor"` // Rate / FloorRate
	// HeapBefore is the live Go heap before the stage started (the broker
	// holds the topic); PeakHeap the highest heap in use (live and
	// garbage) sampled every 20 ms while it ran.
	HeapBefore uint64 `json:"heap_before_bytes"`
	PeakHeap   uint64 `json:"peak_heap_bytes"`
	// VmHWM is the process' peak resident set (/proc/self/status), reset
	// before the stage's broker started when VmHWMReset.
	VmHWM      uint64 `json:"vmhwm_bytes"`
	VmHWMReset bool   `json:"vmhwm_reset"`
	// Variants are the rates of other configurations of the same stage on
	// the same topic (the trainer's optimizers and memory bounds).
	Variants map[string]float64 `json:"variants,omitempty"`
	// LogOrderShare is, with mini-batches (model.step > 1), the share of
	// the learner's time spent in log order (step.go, phase 1): more
	// workers can at best cut the rest (Amdahl).
	LogOrderShare float64 `json:"step_log_order_share,omitempty"`
	MeanStep      float64 `json:"mean_step,omitempty"` // examples per step

	// Timelines are the cumulative records of each phase (raw, floor,
	// stage) over its seconds.
	Timelines map[string][]bench.Sample `json:"timelines"`
	Notes     []string                  `json:"notes,omitempty"`
}

// record fills the result from its three phases, and the peak RSS now.
func (r *Result) record(raw, floor, stage phase) {
	r.RawRate, r.FloorRate, r.Rate, r.PeakHeap, r.VmHWM = raw.Rate, floor.Rate, stage.Rate, stage.PeakHeap, vmHWM()
	r.Timelines["raw consume"], r.Timelines["floor"], r.Timelines[r.Stage] = raw.Timeline, floor.Timeline, stage.Timeline
	r.RawRatio, r.FloorRatio = ratio(r.Rate, r.RawRate), ratio(r.Rate, r.FloorRate)
	r.LogOrderShare, r.MeanStep = stage.LogOrderShare, stage.MeanStep
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// run is what a stage's measurement starts from: the result to fill, the
// canvas registry and a fresh embedded broker (the caller closes it).
type run struct {
	res   *Result
	reg   *ingest.Registry
	br    *stream.Broker
	copts stream.ClientOptions
}

// start frees what earlier stages left, resets the peak RSS and starts a
// broker whose auto-created topics have the given partitions (0: its
// default).
func start(stage, floor string, records int, canvases []ingest.Canvas, partitions int) (*run, error) {
	if len(canvases) == 0 {
		canvases = ingest.DefaultCanvases()
	}
	reg, err := ingest.NewRegistry(canvases)
	if err != nil {
		return nil, err
	}
	debug.FreeOSMemory()
	res := &Result{Stage: stage, Floor: floor, Records: records, VmHWMReset: resetHWM(), Timelines: map[string][]bench.Sample{}}
	br, err := stream.StartBroker(stream.BrokerOptions{Partitions: partitions})
	if err != nil {
		return nil, err
	}
	return &run{res: res, reg: reg, br: br, copts: stream.Plaintext(br.Addr())}, nil
}
