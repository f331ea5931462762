package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/unirec/unirec/serve"
	"net"
	"net/http"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"golang.org/x/sync/errgroup"

	"github.com/unirec/unirec/snapshot"
)

// Process is one unirec process: its config, its stages' goroutines (one
// errgroup: the first stage to fail stops them all), their metrics and
// HTTP routes.
type Process struct {
	Config  Config
	Metrics *metrics.Set
	Mux     *http.ServeMux
	Logf    func(format string, args ...any)
	// Hooks let a caller watch the stages (benchmarks time them).
	Hooks Hooks

	ctx    context.Context
	cancel context.CancelFunc
	g      *errgroup.Group
}

// Hooks are called by the stages as they work; nil ones are skipped.
type Hooks struct {
	// Published is called after every committed snapshot with the time its
	// capture and transaction took.
	Published func(m *snapshot.Manifest, took time.Duration)
	// Applied is called after the replica applied (or refused) a snapshot,
	// with when the apply began and ended.
	Applied func(u *snapshot.Update, start, end time.Time)
}

// NewProcess returns a process of cfg (validated, its secrets loaded)
// whose stages run until ctx ends or one fails.
func NewProcess(ctx context.Context, cfg Config, logf func(format string, args ...any)) *Process {
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	return &Process{Config: cfg, Metrics: metrics.NewSet(), Mux: http.NewServeMux(), Logf: logf, ctx: gctx, cancel: cancel, g: g}
}

// Context ends when the process stops.
func (p *Process) Context() context.Context { return p.ctx }

// Go runs fn until the process stops. An error fn returns before then
// stops the process and becomes Wait's, prefixed with name; errors after
// are the stop's own and dropped.
func (p *Process) Go(name string, fn func(ctx context.Context) error) {
	p.g.Go(func() error {
		if err := fn(p.ctx); err != nil && p.ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// Wait waits for every stage and returns the first error.
func (p *Process) Wait() error {
	err := p.g.Wait()
	p.cancel()
	return err
}

// Stop stops every stage and waits for them.
func (p *Process) Stop() error {
	p.cancel()
	return p.Wait()
}

// ServeHTTP serves the process's routes, /metrics added, on addr until
// the process stops, and returns the address it bound (addr may name port
// 0).
func (p *Process) ServeHTTP(addr string) (net.Addr, error) {
	p.Mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		p.Metrics.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	o := serve.DefaultHTTPOptions()
	srv := serve.NewHTTPServer(p.Mux, o)
	refused := p.Metrics.GetOrCreateCounter("unirec_http_connections_refused_total")
	ln = serve.LimitListener(ln, o.MaxConnections, refused.Inc)
	p.Go("http "+addr, func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(shut)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	return ln.Addr(), nil
}
