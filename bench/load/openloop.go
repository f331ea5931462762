package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/unirec/unirec/bench"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
)

// Options configure one open-loop run.
type Options struct {
	Client   *client.Client
	Rate     float64       // requests per second
	Duration time.Duration // how long requests are sent
	// Request returns the i-th request to send; nil sends GET /healthz
	// instead (use case "healthz"), the baseline of the HTTP path and of
	// the machine's noise at the same rate.
	Request func(i int) *serve.Request
	// Timeout bounds one request on the client side (default 10s).
	Timeout time.Duration
	// Progress draws a bar of the requests sent (nil: none).
	Progress io.Writer
}

// Result is what one run measured, per use case and in all.
type Result struct {
	Rate     float64          `json:"rate"`
	Duration time.Duration    `json:"duration_ns"`
	All      Stats            `json:"all"`
	UseCases map[string]Stats `json:"use_cases"`
	// MachineBusy is the share of the machine's CPU time in use during
	// the run, every process's (the generator's, a child replica's, any
	// other); CPUPerRequest is that busy time over the requests sent.
	// Both are 0 where /proc/stat cannot be read.
	MachineBusy   float64       `json:"machine_busy"`
	CPUPerRequest time.Duration `json:"cpu_per_request_ns"`
}

// Stats are the figures of a set of requests. Latency is measured from
// the time a request was due, not sent, so a stalled generator cannot hide
// slow answers (no coordinated omission).
type Stats struct {
	Requests int           `json:"requests"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	P999     time.Duration `json:"p999_ns"`
	Max      time.Duration `json:"max_ns"`
	// ServerP50 and ServerP99 are the replica's own time (timing.total_us
	// of 200 answers): the rest of the latency is HTTP, the network stack
	// and the generator.
	ServerP50 time.Duration  `json:"server_p50_ns"`
	ServerP99 time.Duration  `json:"server_p99_ns"`
	Errors    map[string]int `json:"errors"`    // by HTTP status or "transport"
	Fallbacks map[string]int `json:"fallbacks"` // by reason
	lat       []time.Duration
	server    []time.Duration
}

// Latencies are the measured latencies, sorted (not in the JSON form).
func (s *Stats) Latencies() []time.Duration { return s.lat }

// ErrorRate is the fraction of requests that did not get a 200.
func (s *Stats) ErrorRate() float64 { return frac(sum(s.Errors), s.Requests) }

// FallbackRate is the fraction of requests a fallback answered.
func (s *Stats) FallbackRate() float64 { return frac(sum(s.Fallbacks), s.Requests) }

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

type sample struct {
	useCase  string
	latency  time.Duration
	server   time.Duration // 0 for errors
	err      string
	fallback string
}

// Run sends requests at opts.Rate for opts.Duration, each at its due time
// whatever the previous ones are doing (open loop), and waits for every
// answer.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Rate <= 0 || opts.Duration <= 0 {
		return nil, fmt.Errorf("cannot run: rate and duration must be positive")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	n := int(opts.Rate * opts.Duration.Seconds())
	samples := make([]sample, n)
	var wg sync.WaitGroup
	bar := bench.NewProgress(opts.Progress, "requests", n)
	ticks, ticksOK := readCPUTicks()
	start := time.Now()
	for i := range n {
		bar.Update(i)
		due := start.Add(time.Duration(float64(i) / opts.Rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		req := &serve.Request{UseCase: "healthz"}
		if opts.Request != nil {
			req = opts.Request(i)
		}
		wg.Go(func() { samples[i] = send(ctx, opts, req, due) })
	}
	wg.Wait()
	bar.Done(n)
	r := summarize(opts, samples)
	if after, ok := readCPUTicks(); ok && ticksOK {
		r.machineCPU(ticks, after, n)
	}
	return r, nil
}

func send(ctx context.Context, opts Options, req *serve.Request, due time.Time) sample {
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	resp, err := &serve.Response{}, error(nil)
	if opts.Request == nil {
		err = opts.Client.Healthz(ctx)
	} else {
		resp, err = opts.Client.Recommend(ctx, req)
	}
	s := sample{useCase: req.UseCase, latency: time.Since(due)}
	var e *client.Error
	switch {
	case errors.As(err, &e):
		s.err = fmt.Sprint(e.Status)
	case err != nil:
		s.err = "transport"
	default:
		s.server = time.Duration(resp.Timing.TotalUS) * time.Microsecond
		if resp.Fallback.Used {
			s.fallback = resp.Fallback.Reason
		}
	}
	return s
}

func summarize(opts Options, samples []sample) *Result {
	r := &Result{Rate: opts.Rate, Duration: opts.Duration, UseCases: map[string]Stats{}}
	per := map[string]*Stats{}
	all := newStats()
	for _, s := range samples {
		st := per[s.useCase]
		if st == nil {
			st = newStats()
			per[s.useCase] = st
		}
		for _, x := range []*Stats{st, all} {
			x.Requests++
			x.lat = append(x.lat, s.latency)
			if s.err == "" {
				x.server = append(x.server, s.server)
			}
			if s.err != "" {
				x.Errors[s.err]++
			}
			if s.fallback != "" {
				x.Fallbacks[s.fallback]++
			}
		}
	}
	r.All = all.finish()
	for name, st := range per {
		r.UseCases[name] = st.finish()
	}
	return r
}

func newStats() *Stats { return &Stats{Errors: map[string]int{}, Fallbacks: map[string]int{}} }

func (s *Stats) finish() Stats {
	slices.Sort(s.lat) // Latencies are in order
	s.P50, s.P99, s.P999, s.Max = bench.Percentile(s.lat, 0.5), bench.Percentile(s.lat, 0.99), bench.Percentile(s.lat, 0.999), bench.Percentile(s.lat, 1)
	s.ServerP50, s.ServerP99 = bench.Percentile(s.server, 0.5), bench.Percentile(s.server, 0.99)
	return *s
}

// HTTPClient returns an HTTP client that keeps enough connections open
// for an open loop at rate (no connection set-up on the measured path).
func HTTPClient(rate float64) *http.Client {
	n := max(64, int(rate/10))
	return &http.Client{Transport: &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, IdleConnTimeout: time.Minute}}
}
