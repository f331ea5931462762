package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/datasets"
	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// Record is one event ready to produce: its key, its JSON bytes and its
// event time (zero when unknown).
type Record struct {
	Key, Value []byte
	Time       time.Time
}

// EventRecord encodes an event, keyed by its request id (or user id).
func EventRecord(e *ingest.Event) (Record, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return Record{}, fmt.Errorf("cannot encode event %s: %w", e.EventID, err)
	}
	key := e.RequestID
	if key == "" {
		key = e.Context["user_id"]
	}
	return Record{Key: []byte(key), Value: b, Time: e.Time}, nil
}

// EventRecords encodes events.
func EventRecords(evs []ingest.Event) ([]Record, error) {
	out := make([]Record, len(evs))
	for i := range evs {
		r, err := EventRecord(&evs[i])
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

// ReadJSONL reads unirec's own JSON-lines event format: one event per line,
// as it would be produced to the events topic. Lines are kept as they are
// (even invalid ones, which ingest will dead-letter); the key and time are
// read when present.
func ReadJSONL(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var out []Record
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var head struct {
			Time      time.Time         `json:"time"`
			RequestID string            `json:"request_id"`
			Context   map[string]string `json:"context"`
		}
		_ = json.Unmarshal(line, &head)
		key := head.RequestID
		if key == "" {
			key = head.Context["user_id"]
		}
		out = append(out, Record{Key: []byte(key), Value: append([]byte(nil), line...), Time: head.Time})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cannot read JSON lines: %w", err)
	}
	return out, nil
}

// ReadJSONLFile reads a JSON-lines file.
func ReadJSONLFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	defer f.Close()
	return ReadJSONL(f)
}

// ProduceOptions paces a production.
type ProduceOptions struct {
	Client stream.ClientOptions
	Topic  string
	// Rate is the target records per second; 0 is as fast as possible.
	Rate float64
	// Speed replays at event-time speed times this factor (60: a minute of
	// log per second); 0 ignores event times. Rate and Speed exclude each other.
	Speed    float64
	Progress io.Writer // nil: no progress bar
}

// ProduceResult is what a production measured.
type ProduceResult struct {
	Records int
	Elapsed time.Duration
	Rate    float64 // records per second achieved
	Failed  int64
	// Timeline samples the records sent so far, every 100 ms.
	Timeline []Sample
}

// Sample is a cumulative count at a time since the start.
type Sample struct {
	Seconds float64
	Count   int
}

// RatePlot plots the per-interval rate of a cumulative timeline.
func RatePlot(title, unit string, tl []Sample) []byte {
	return LinePlot(title, "seconds", unit+" per second", []Series{RateSeries(unit+"/s", tl)})
}

// RateSeries is the per-interval rate of a cumulative timeline.
func RateSeries(name string, tl []Sample) Series {
	s := Series{Name: name}
	for i := 1; i < len(tl); i++ {
		dt := tl[i].Seconds - tl[i-1].Seconds
		if dt > 0 {
			s.X = append(s.X, tl[i].Seconds)
			s.Y = append(s.Y, float64(tl[i].Count-tl[i-1].Count)/dt)
		}
	}
	return s
}

// Produce sends recs to the topic, paced as opts say, and waits until every
// record is acknowledged.
func Produce(ctx context.Context, opts ProduceOptions, recs []Record) (ProduceResult, error) {
	if opts.Rate > 0 && opts.Speed > 0 {
		return ProduceResult{}, fmt.Errorf("rate and speed exclude each other")
	}
	cl, err := kgo.NewClient(append(opts.Client.Opts(), kgo.DefaultProduceTopic(opts.Topic), kgo.ProducerLinger(5*time.Millisecond))...)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("cannot create producer: %w", err)
	}
	defer cl.Close()
	var failed atomic.Int64
	var firstErr atomic.Value
	var bar *Progress
	if opts.Progress != nil {
		bar = NewProgress(opts.Progress, "events", len(recs))
	}
	start := time.Now()
	var timeline []Sample
	next := start
	for i, r := range recs {
		if now := time.Now(); !now.Before(next) {
			timeline = append(timeline, Sample{Seconds: now.Sub(start).Seconds(), Count: i})
			next = now.Add(100 * time.Millisecond)
		}
		if err := pace(ctx, opts, start, i, r.Time, recs[0].Time); err != nil {
			return ProduceResult{}, err
		}
		cl.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		})
		if bar != nil {
			bar.Update(i + 1)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return ProduceResult{}, fmt.Errorf("cannot flush producer: %w", err)
	}
	if bar != nil {
		bar.Done(len(recs))
	}
	el := time.Since(start)
	timeline = append(timeline, Sample{Seconds: el.Seconds(), Count: len(recs)})
	res := ProduceResult{Records: len(recs), Elapsed: el, Rate: float64(len(recs)) / el.Seconds(), Failed: failed.Load(), Timeline: timeline}
	if e, ok := firstErr.Load().(error); ok {
		return res, fmt.Errorf("cannot produce %d records: %w", res.Failed, e)
	}
	return res, nil
}

// pace waits until record i is due.
func pace(ctx context.Context, opts ProduceOptions, start time.Time, i int, t, t0 time.Time) error {
	var due time.Time
	switch {
	case opts.Rate > 0:
		due = start.Add(time.Duration(float64(i) / opts.Rate * float64(time.Second)))
	case opts.Speed > 0 && !t.IsZero() && !t0.IsZero():
		due = start.Add(time.Duration(float64(t.Sub(t0)) / opts.Speed))
	default:
		return ctx.Err()
	}
	wait := time.Until(due)
	if wait <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}

// AddProduction adds a production's figures, rate plot and table to rep.
func AddProduction(rep *Report, res ProduceResult) {
	rep.Figure("events", res.Records)
	rep.Figure("seconds", res.Elapsed.Seconds())
	rep.Figure("events_per_second", res.Rate)
	rep.AddPlot("throughput.svg", "Events produced per second", RatePlot("Events produced per second", "events", res.Timeline))
	rep.AddTable(Table{Title: "Production", Header: []string{"events", "seconds", "events/s"},
		Rows: [][]string{{fmt.Sprint(res.Records), fmt.Sprintf("%.2f", res.Elapsed.Seconds()), fmt.Sprintf("%.0f", res.Rate)}}})
}

// ProduceReport is `unirec bench produce` and `replay`: it produces recs
// as o says, writes the report of the production (name; cfg, with the
// brokers, topic and rate added) to dir and prints a summary line to out.
func ProduceReport(ctx context.Context, o ProduceOptions, name string, cfg map[string]any, recs []Record, dir string, out io.Writer) error {
	brokers := strings.Join(o.Client.Brokers, ",")
	cfg["brokers"], cfg["topic"], cfg["rate"] = brokers, o.Topic, o.Rate
	rep := NewReport(name, cfg)
	res, err := Produce(ctx, o, recs)
	if err != nil {
		return err
	}
	AddProduction(rep, res)
	if err := rep.Write(dir); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d events in %.2fs (%.0f events/s) to %s on %s; report in %s\n", res.Records, res.Elapsed.Seconds(), res.Rate, o.Topic, brokers, dir)
	return nil
}

// ReplayRecords are the records `unirec bench replay` produces: the lines
// of a JSON-lines file (dataset "jsonl") as they are, or a data set
// (datasets.Load) in event-time order. With rebase, event times shift by
// whole weeks so that the last event falls in the past week (synth is
// made to end now), and cfg gets rebase_weeks.
func ReplayRecords(dataset, path string, rebase bool, cfg map[string]any) ([]Record, error) {
	if dataset == "jsonl" {
		if path == "" {
			return nil, fmt.Errorf("--path is required for --dataset jsonl")
		}
		if rebase {
			cfg["rebase_weeks"] = 0
		}
		return ReadJSONLFile(path)
	}
	evs, err := datasets.Load(dataset, path, false)
	if err != nil {
		return nil, err
	}
	if rebase && dataset != "synth" {
		shift := datasets.RebaseWeeks(evs, time.Now().UTC())
		cfg["rebase_weeks"] = int(shift / datasets.Week)
	}
	return EventRecords(evs)
}
