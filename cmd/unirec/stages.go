package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// group runs goroutines and cancels them all when the first fails.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	err    error
}

func newGroup(ctx context.Context) *group {
	g := &group{}
	g.ctx, g.cancel = context.WithCancel(ctx)
	return g
}

func (g *group) Go(name string, fn func(ctx context.Context) error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(g.ctx); err != nil && g.ctx.Err() == nil {
			g.once.Do(func() { g.err = fmt.Errorf("%s: %w", name, err); g.cancel() })
		}
	}()
}

func (g *group) Wait() error {
	g.wg.Wait()
	g.cancel()
	return g.err
}

// topicSpecs is every topic unirec uses, as it must be.
func topicSpecs(cfg Config) []stream.TopicSpec {
	specs := cfg.Topics.Layout(int32(cfg.Broker.EventPartitions))
	for i := range specs {
		if specs[i].Name == cfg.Topics.Snapshots {
			if specs[i].Configs == nil {
				specs[i].Configs = map[string]string{}
			}
			// a replica must always find the newest full snapshot and its deltas
			specs[i].Configs["retention.ms"] = fmt.Sprint(cfg.SnapshotRetention().Milliseconds())
		}
	}
	rf := cfg.Topics.ReplicationFactor
	return append(specs,
		stream.TopicSpec{Name: cfg.Ingest.Changelog, Partitions: int32(cfg.Broker.EventPartitions), Replicas: rf,
			Configs: map[string]string{"cleanup.policy": "compact"}},
		// the trainers' lease: one partition, its holder leads; replicated
		// like the rest, so losing a broker does not stop failover
		stream.TopicSpec{Name: cfg.Trainer.LeaseTopic, Partitions: 1, Replicas: rf})
}

// ensureTopics creates missing topics (when the config allows it) and
// checks that every topic is as unirec needs it.
func ensureTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	if cfg.AutoCreateTopics {
		if err := stream.EnsureTopics(ctx, cl, topicSpecs(cfg)); err != nil {
			return err
		}
	}
	return stream.CheckTopics(ctx, cl, topicSpecs(cfg))
}

// startIngest runs the ingest stage until ctx ends.
func startIngest(g *group, cfg Config, set *metrics.Set) error {
	reg, err := cfg.Registry()
	if err != nil {
		return err
	}
	catalog := ingest.NewCatalog(set)
	ing := ingest.New(ingest.Options{
		Registry: reg, Topics: cfg.Topics, Changelog: cfg.Ingest.Changelog, Client: cfg.Kafka,
		AllowedLateness: cfg.Ingest.AllowedLateness, MaxFutureSkew: cfg.Ingest.MaxFutureSkew, MaxEventBytes: cfg.Ingest.MaxEventBytes,
		MaxDedupeIDs: cfg.Ingest.MaxDedupeIDs, MaxPoolItems: cfg.Ingest.MaxPoolItems, Catalog: catalog, Metrics: set, Logf: log.Printf,
	})
	var extra []kgo.Opt
	if d := cfg.Ingest.SessionTimeout; d > 0 {
		extra = append(extra, kgo.SessionTimeout(d), kgo.RebalanceTimeout(d), kgo.HeartbeatInterval(d/3))
	}
	g.Go("catalog", func(ctx context.Context) error {
		return catalog.Follow(ctx, cfg.Kafka, cfg.Topics.Catalog, log.Printf)
	})
	g.Go("ingest", func(ctx context.Context) error {
		return stream.RunTxLoop(ctx, stream.TxLoopOptions{
			Client: cfg.Kafka, Group: cfg.Ingest.Group, TransactionalID: cfg.Ingest.TransactionalID,
			Topic: cfg.Topics.Events, Logf: log.Printf, ExtraOpts: extra,
		}, ing)
	})
	return nil
}

// startTrainer runs the trainer and the snapshot publisher until ctx ends.
func startTrainer(g *group, cfg Config, set *metrics.Set, mux *http.ServeMux, _ *statusSource) error {
	topts := cfg.TrainerOptions()
	topts.Metrics, topts.Logf = set, log.Printf
	t, err := online.OpenTrainer(topts)
	if err != nil {
		return err
	}
	key, err := cfg.Snapshot.Key()
	if err != nil {
		t.Close()
		return err
	}
	lease, err := online.JoinLease(g.ctx, online.LeaseOptions{Client: cfg.Kafka, Topic: cfg.Trainer.LeaseTopic,
		Group: cfg.Trainer.LeaseGroup, SessionTimeout: cfg.Trainer.LeaseSessionTimeout, Logf: log.Printf})
	if err != nil {
		t.Close()
		return err
	}
	leader := set.GetOrCreateGauge("unirec_trainer_leader", func() float64 {
		if held, _ := lease.Held(); held {
			return 1
		}
		return 0
	})
	mux.HandleFunc("GET /v1/trainer/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"applied": t.Applied(), "leader": leader.Get() == 1, "tasks": t.Progress().All()})
	})
	var wg sync.WaitGroup
	wg.Add(2)
	g.Go("trainer", func(ctx context.Context) error {
		defer wg.Done()
		return t.Run(ctx)
	})
	g.Go("snapshot", func(ctx context.Context) error {
		defer wg.Done()
		return lease.WhileLeading(ctx, func(ctx context.Context) error { return publishWhileLeading(ctx, cfg, set, t, key) })
	})
	g.Go("trainer-close", func(ctx context.Context) error {
		<-ctx.Done()
		wg.Wait()
		lease.Close()
		return t.Close()
	})
	return nil
}

// startReplica runs a serving replica fed by the snapshots topic; status
// shows what its use cases serve.
func startReplica(g *group, cfg Config, set *metrics.Set, mux *http.ServeMux, status *statusSource) error {
	reg, err := cfg.Registry()
	if err != nil {
		return err
	}
	key, err := cfg.Snapshot.Key()
	if err != nil {
		return err
	}
	token, err := cfg.Serve.AdminToken()
	if err != nil {
		return err
	}
	apiToken, err := cfg.Serve.APIToken()
	if err != nil {
		return err
	}
	if key == nil {
		log.Printf("serve: no snapshot.hmac_key_file or snapshot.hmac_key_env: snapshots are not authenticated")
	}
	opts := cfg.Serve.ReplicaOptions(reg)
	opts.AdminToken, opts.APIToken, opts.Metrics, opts.Logf = token, apiToken, set, log.Printf
	r, err := serve.NewReplica(opts)
	if err != nil {
		return err
	}
	mux.Handle("/", r.Handler())
	status.replica = r
	var logged time.Time // full snapshots are logged at most once a minute
	g.Go("subscribe", func(ctx context.Context) error {
		return snapshot.Subscribe(ctx, snapshot.SubscriberOptions{Client: cfg.Kafka, Topic: cfg.Topics.Snapshots, Key: key, Metrics: set, Logf: log.Printf},
			snapshot.Handler{Apply: func(u *snapshot.Update) error {
				if err := r.Apply(u); err != nil {
					return err
				}
				if m := u.Manifest; m.Kind == snapshot.KindFull && time.Since(logged) >= time.Minute {
					logged = time.Now()
					log.Printf("serve: full snapshot version %d live (watermark %s, %d examples, %d rows, %d items)",
						m.Version, m.Watermark.Format(time.RFC3339), m.Applied, m.Rows, m.Items)
				}
				return nil
			}, Control: r.Control})
	})
	g.Go("popularity", func(ctx context.Context) error {
		return r.FollowEvents(ctx, cfg.Kafka, cfg.Topics.Events, 100_000)
	})
	g.Go("catalog", func(ctx context.Context) error {
		return r.FollowCatalog(ctx, cfg.Kafka, cfg.Topics.Catalog)
	})
	return nil
}

// serveHTTP serves mux (plus /metrics and /healthz when absent) on addr.
func serveHTTP(g *group, addr string, mux *http.ServeMux, set *metrics.Set) (net.Addr, error) {
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		set.WritePrometheus(w)
		metrics.WriteProcessMetrics(w)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	o := serve.DefaultHTTPOptions()
	srv := serve.NewHTTPServer(mux, o)
	refused := set.GetOrCreateCounter("unirec_http_connections_refused_total")
	ln = serve.LimitListener(ln, o.MaxConnections, refused.Inc)
	g.Go("http "+addr, func(ctx context.Context) error {
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

// publishWhileLeading publishes snapshots until ctx ends (the lease is
// lost). Its publisher's transactional id is every trainer's, so creating
// it fences the publisher of a previous leader; versions continue above
// the snapshots topic's end offset, which bounds every version published.
func publishWhileLeading(ctx context.Context, cfg Config, set *metrics.Set, t *online.Trainer, key []byte) error {
	floor, err := endOffset(ctx, cfg, cfg.Topics.Snapshots)
	if err != nil {
		return err
	}
	t.RaiseVersion(floor)
	pub, err := snapshot.NewPublisher(snapshot.PublisherOptions{
		Client: cfg.Kafka, Topic: cfg.Topics.Snapshots, TransactionalID: cfg.Snapshot.TransactionalID,
		ModelID: cfg.Snapshot.ModelID, Interval: cfg.Snapshot.Interval, FullInterval: cfg.Snapshot.FullInterval,
		Encoding: cfg.Snapshot.Encoding, Key: key, Metrics: set, Logf: log.Printf,
	}, t)
	if err != nil {
		return err
	}
	defer pub.Close()
	log.Printf("trainer: leading; publishing snapshots above version %d", floor)
	return pub.Run(ctx)
}

// endOffset is the end offset of partition 0 of topic.
func endOffset(ctx context.Context, cfg Config, topic string) (int64, error) {
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return 0, fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("cannot list end offsets of %q: %w", topic, err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		return 0, fmt.Errorf("cannot list end offset of %q: %v", topic, o.Err)
	}
	return o.Offset, nil
}
