package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"path/filepath"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/bench/synth"
	"github.com/unirec/unirec/stream"
)

// cmdRun starts everything in one process on the embedded broker.
func cmdRun(ctx context.Context, args []string) error {
	f := newFlags("run")
	demo := f.fs.Bool("demo", true, "produce demo events for all four canvases")
	port := f.fs.Int("broker-port", 0, "port of the embedded broker (default broker.port, 9092)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	if *port != 0 {
		cfg.Broker.Port = *port
	}
	if f.listen != "" {
		cfg.Serve.Listen = f.listen
	}
	cfg.Demo.Enabled = *demo
	b, err := startEmbeddedBroker(ctx, &cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	set := metrics.NewSet()
	g := newGroup(ctx)
	mux := http.NewServeMux()
	if err := startIngest(g, cfg, set); err != nil {
		return err
	}
	status := newStatusSource(cfg, "run")
	if err := startTrainer(g, cfg, set, mux, status); err != nil {
		return err
	}
	if err := startReplica(g, cfg, set, mux, status); err != nil {
		return err
	}
	status.register(mux)
	addr, err := serveHTTP(g, cfg.Serve.Listen, mux, set)
	if err != nil {
		g.cancel()
		g.Wait()
		return err
	}
	if cfg.Demo.Enabled {
		g.Go("demo", func(ctx context.Context) error { return runDemo(ctx, cfg) })
	}
	printWelcome(b.Addr(), addr.String(), cfg)
	return g.Wait()
}

func printWelcome(broker, api string, cfg Config) { fmt.Print(welcome(broker, api, cfg)) }

// welcome is what `unirec run` prints once everything is up: where it all
// is, and a query and an event to try, the query with the API token's
// header when one is configured (without it the query would get a 401).
func welcome(broker, api string, cfg Config) string {
	demo := fmt.Sprintf("on (%.0f requests/s)", cfg.Demo.Rate)
	if !cfg.Demo.Enabled {
		demo = "off"
	}
	auth := ""
	switch {
	case cfg.Serve.APITokenFile != "":
		auth = fmt.Sprintf(` -H "Authorization: Bearer $(cat %s)"`, cfg.Serve.APITokenFile)
	case cfg.Serve.APITokenEnv != "":
		auth = fmt.Sprintf(` -H "Authorization: Bearer $%s"`, cfg.Serve.APITokenEnv)
	}
	return fmt.Sprintf(`
unirec is running (data in %s)
  Kafka broker (embedded):  %s   topics: %s and %s (in), %s, %s, %s
  Status page:              http://%s/
  Serving API:              http://%s/v1/recommend   metrics: http://%s/metrics
  Demo events:              %s

Try:
  curl -s%s %s/v1/recommend -d '{"use_case":"search","context":{"user_id":"u-1","query":"space documentary","country":"US"},"k":5}'
  echo '{"event_id":"e-1","time":"%s","canvas":"notifications","action":"click","item_id":"m-1","context":{"user_id":"u-1"}}' | kcat -P -b %s -t %s
Stop with Ctrl-C.
`, cfg.DataDir, broker, cfg.Topics.Events, cfg.Topics.Catalog, cfg.Topics.Examples, cfg.Topics.DeadLetters, cfg.Topics.Snapshots,
		api, api, api, demo, auth, api, time.Now().UTC().Format(time.RFC3339), broker, cfg.Topics.Events)
}

// runIDPrefix is the event and request id prefix of one run of a
// synthetic world that produces to a shared events topic (kind "demo",
// "produce", ...). Ingest remembers event ids for an hour and drops a
// repeated one as a duplicate: without it, a restarted demo or a second
// bench produce repeats e-0, e-1, ... and nothing it produces is learned.
func runIDPrefix(kind string, now time.Time) string {
	return fmt.Sprintf("%s-%d-", kind, now.UnixMilli())
}

// demoBackfill is how much event-time history the demo produces at once on
// an empty events topic, so the first model is trained on both positives
// and closed-window negatives within seconds of start-up.
const demoBackfill = 5 * time.Minute

// runDemo produces synthetic events for every canvas at cfg.Demo.Rate
// requests per second, with event times at the wall clock.
func runDemo(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Events))...)
	if err != nil {
		return fmt.Errorf("cannot create demo producer: %w", err)
	}
	defer cl.Close()
	step := time.Duration(float64(time.Second) / cfg.Demo.Rate)
	start := time.Now()
	empty, err := topicEmpty(ctx, cl, cfg.Topics.Events)
	if err != nil {
		return err
	}
	if empty {
		start = start.Add(-demoBackfill)
		log.Printf("demo: empty events topic, producing %s of history first", demoBackfill)
	}
	w := synth.NewWorld(synth.Options{Seed: cfg.Demo.Seed, Start: start, Step: step, IDPrefix: runIDPrefix("demo", time.Now())})
	for i := 0; ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * step)); wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		for _, ev := range w.Next() {
			b, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("cannot encode demo event: %w", err)
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(ev.RequestID), Value: b}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					log.Printf("demo: produce: %v", err)
				}
			})
		}
	}
	return nil
}

// topicEmpty says whether topic holds no record at all. A topic that does
// not exist is empty; any other offset error is returned.
func topicEmpty(ctx context.Context, cl *kgo.Client, topic string) (bool, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("cannot list end offsets of %q: %w", topic, err)
	}
	empty := true
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("cannot list end offset of %s partition %d: %w", topic, o.Partition, o.Err))
		case o.Offset > 0:
			empty = false
		}
	})
	return empty, errors.Join(errs...)
}

// startEmbeddedBroker starts the embedded broker with its data under the
// data dir, points cfg's clients at it and creates the topics.
func startEmbeddedBroker(ctx context.Context, cfg *Config) (*stream.Broker, error) {
	bo, err := cfg.brokerOptions()
	if err != nil {
		return nil, err
	}
	b, err := stream.StartBroker(bo)
	if err != nil {
		return nil, err
	}
	cfg.Kafka.Brokers = []string{b.Addr()}
	if err := ensureTopics(ctx, *cfg); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// cmdBroker runs the embedded broker alone.
func cmdBroker(ctx context.Context, args []string) error {
	f := newFlags("broker")
	port := f.fs.Int("port", 0, "port to listen on (default broker.port, 9092)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	if *port != 0 {
		cfg.Broker.Port = *port
	}
	b, err := startEmbeddedBroker(ctx, &cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	log.Printf("broker: listening on %s (data in %s)", b.Addr(), filepath.Join(cfg.DataDir, "broker"))
	<-ctx.Done()
	return nil
}

// cmdIngest runs the ingest stage against --brokers.
func cmdIngest(ctx context.Context, args []string) error {
	return runStage(ctx, "ingest", args, func(g *group, cfg Config, set *metrics.Set, _ *http.ServeMux, _ *statusSource) error {
		return startIngest(g, cfg, set)
	}, func(cfg Config) string { return cfg.Ingest.Listen })
}

// cmdTrain runs the trainer and snapshot publisher against --brokers.
func cmdTrain(ctx context.Context, args []string) error {
	return runStage(ctx, "train", args, startTrainer, func(cfg Config) string { return cfg.Trainer.Listen })
}

// cmdServe runs a serving replica against --brokers.
func cmdServe(ctx context.Context, args []string) error {
	return runStage(ctx, "serve", args, startReplica, func(cfg Config) string { return cfg.Serve.Listen })
}

// runStage runs one stage as its own process with its own HTTP endpoint.
func runStage(ctx context.Context, name string, args []string,
	start func(*group, Config, *metrics.Set, *http.ServeMux, *statusSource) error, listen func(Config) string) error {
	f := newFlags(name)
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	addr := listen(cfg)
	if f.listen != "" {
		addr = f.listen
	}
	if err := ensureTopics(ctx, cfg); err != nil {
		return err
	}
	set := metrics.NewSet()
	g := newGroup(ctx)
	mux := http.NewServeMux()
	status := newStatusSource(cfg, name)
	if err := start(g, cfg, set, mux, status); err != nil {
		return err
	}
	if name != "serve" {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ready") })
	}
	status.register(mux)
	a, err := serveHTTP(g, addr, mux, set)
	if err != nil {
		g.cancel()
		g.Wait()
		return err
	}
	log.Printf("%s: running against %v, HTTP on %s", name, cfg.Kafka.Brokers, a)
	return g.Wait()
}
