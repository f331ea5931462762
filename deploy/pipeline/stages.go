package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
)

// TopicSpecs is every topic unirec uses, as it must be.
func TopicSpecs(cfg Config) []stream.TopicSpec {
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

// EnsureTopics creates missing topics (when the config allows it) and
// checks that every topic is as unirec needs it.
func EnsureTopics(ctx context.Context, cfg Config) error {
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	if cfg.AutoCreateTopics {
		if err := stream.EnsureTopics(ctx, cl, TopicSpecs(cfg)); err != nil {
			return err
		}
	}
	return stream.CheckTopics(ctx, cl, TopicSpecs(cfg))
}

// StartBroker starts the embedded broker with its data under the data
// dir, points cfg's clients at it and creates the topics.
func StartBroker(ctx context.Context, cfg *Config) (*stream.Broker, error) {
	bo, err := cfg.brokerOptions()
	if err != nil {
		return nil, err
	}
	b, err := stream.StartBroker(bo)
	if err != nil {
		return nil, err
	}
	cfg.Kafka.Brokers = []string{b.Addr()}
	if err := EnsureTopics(ctx, *cfg); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// StartIngest runs the ingest stage and its catalog follower.
func StartIngest(p *Process) error {
	cfg := p.Config
	reg, err := cfg.Registry()
	if err != nil {
		return err
	}
	catalog := ingest.NewCatalog(p.Metrics)
	opts := ingest.Options{
		Registry: reg, Topics: cfg.Topics, Changelog: cfg.Ingest.Changelog, Client: cfg.Kafka,
		AllowedLateness: cfg.Ingest.AllowedLateness, MaxFutureSkew: cfg.Ingest.MaxFutureSkew, MaxEventBytes: cfg.Ingest.MaxEventBytes,
		MaxDedupeIDs: cfg.Ingest.MaxDedupeIDs, MaxPoolItems: cfg.Ingest.MaxPoolItems, Catalog: catalog, Metrics: p.Metrics, Logf: p.Logf,
	}
	var extra []kgo.Opt
	if d := cfg.Ingest.SessionTimeout; d > 0 {
		extra = append(extra, kgo.SessionTimeout(d), kgo.RebalanceTimeout(d), kgo.HeartbeatInterval(d/3))
	}
	p.Go("catalog", func(ctx context.Context) error {
		return catalog.Follow(ctx, cfg.Kafka, cfg.Topics.Catalog, p.Logf)
	})
	p.Go("ingest", func(ctx context.Context) error {
		// events read from a partition other than their key's are routed
		// through the repartition topic, consumed co-partitioned
		n, err := stream.CoPartitions(ctx, cfg.Kafka, cfg.Topics.Events, cfg.Topics.Repartition, cfg.Ingest.Changelog)
		if err != nil {
			return err
		}
		opts.Partitions = n
		ing := ingest.New(opts)
		return stream.RunTxLoop(ctx, stream.TxLoopOptions{
			Client: cfg.Kafka, Group: cfg.Ingest.Group, TransactionalID: cfg.Ingest.TransactionalID,
			Topic: cfg.Topics.Events, CoTopics: []string{cfg.Topics.Repartition}, Logf: p.Logf, ExtraOpts: extra,
		}, ing)
	})
	return nil
}

// StartTrainer runs the trainer, its lease and, while it leads, the
// snapshot publisher; GET /v1/trainer/metrics says what it learned.
func StartTrainer(p *Process) error {
	cfg := p.Config
	if err := cfg.keyLoaded(); err != nil {
		return err
	}
	topts := cfg.TrainerOptions()
	topts.Metrics, topts.Logf = p.Metrics, p.Logf
	t, err := online.OpenTrainer(topts)
	if err != nil {
		return err
	}
	lease, err := online.JoinLease(p.ctx, online.LeaseOptions{Client: cfg.Kafka, Topic: cfg.Trainer.LeaseTopic,
		Group: cfg.Trainer.LeaseGroup, SessionTimeout: cfg.Trainer.LeaseSessionTimeout, Logf: p.Logf})
	if err != nil {
		t.Close()
		return err
	}
	leader := p.Metrics.GetOrCreateGauge("unirec_trainer_leader", func() float64 {
		if held, _ := lease.Held(); held {
			return 1
		}
		return 0
	})
	p.Mux.HandleFunc("GET /v1/trainer/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"applied": t.Applied(), "leader": leader.Get() == 1, "tasks": t.Progress().All()})
	})
	var wg sync.WaitGroup
	wg.Add(2)
	p.Go("trainer", func(ctx context.Context) error {
		defer wg.Done()
		return t.Run(ctx)
	})
	p.Go("snapshot", func(ctx context.Context) error {
		defer wg.Done()
		return lease.WhileLeading(ctx, func(ctx context.Context) error { return publishWhileLeading(ctx, p, t) })
	})
	p.Go("trainer-close", func(ctx context.Context) error {
		<-ctx.Done()
		wg.Wait()
		lease.Close()
		return t.Close()
	})
	return nil
}

// publishWhileLeading publishes snapshots until ctx ends (the lease is
// lost), once the trainer has caught up with the previous leader (CatchUp).
// Its publisher's transactional id is every trainer's, so creating it
// fences the publisher of a previous leader; versions continue above
// VersionFloor and the previous leader's newest version.
func publishWhileLeading(ctx context.Context, p *Process, t *online.Trainer) error {
	cfg := p.Config
	prev, err := CatchUp(ctx, p, t)
	if err != nil {
		return err
	}
	floor, err := VersionFloor(ctx, cfg)
	if err != nil {
		return err
	}
	if prev != nil {
		floor = max(floor, prev.Version)
	}
	t.RaiseVersion(floor)
	pub, err := snapshot.NewPublisher(snapshot.PublisherOptions{
		Client: cfg.Kafka, Topic: cfg.Topics.Snapshots, TransactionalID: cfg.Snapshot.TransactionalID,
		ModelID: cfg.Snapshot.ModelID, Interval: cfg.Snapshot.Interval, FullInterval: cfg.Snapshot.FullInterval,
		Encoding: cfg.Snapshot.Encoding, Key: cfg.Secrets.SnapshotKey, Metrics: p.Metrics, Logf: p.Logf,
		OnPublish: p.Hooks.Published,
	}, t)
	if err != nil {
		return err
	}
	defer pub.Close()
	p.Logf("trainer: leading; publishing snapshots above version %d", floor)
	return pub.Run(ctx)
}

// CatchUp returns once t has learned every example the newest snapshot on
// the topic (the previous leader's last) had learned: its offsets are at
// or past that manifest's. A standby that lags, or a trainer started on an
// empty store, would otherwise publish a model behind what replicas serve,
// under a higher version. It returns ctx's error when ctx ends first (the
// lease is lost). It returns that manifest (nil when there is none): the
// new leader's versions continue above its version too.
func CatchUp(ctx context.Context, p *Process, t *online.Trainer) (*snapshot.Manifest, error) {
	cfg := p.Config
	prev, err := snapshot.NewestManifest(ctx, snapshot.SubscriberOptions{Client: cfg.Kafka, Topic: cfg.Topics.Snapshots,
		Key: cfg.Secrets.SnapshotKey, ModelID: cfg.Snapshot.ModelID})
	if err != nil || prev == nil {
		return nil, err
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for logged := false; ; logged = true {
		part, have, want := behind(t.Offsets(), prev.Offsets)
		if have >= want {
			if logged {
				p.Logf("trainer: caught up with version %d of the previous leader", prev.Version)
			}
			return prev, nil
		}
		if !logged {
			p.Logf("trainer: leading; publishing nothing until caught up with version %d of the previous leader (%s partition %d: at offset %d of %d)",
				prev.Version, cfg.Topics.Examples, part, have, want)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// behind returns a partition where have is behind want, with both
// offsets, or have == want when none is.
func behind(have, want map[int32]int64) (int32, int64, int64) {
	for p, w := range want {
		if have[p] < w {
			return p, have[p], w
		}
	}
	return 0, 0, 0
}

// VersionFloor is what a new leader's versions start above: the end offset
// of the snapshots topic. Every published version used at least one
// offset, so it bounds every version any leader published before.
func VersionFloor(ctx context.Context, cfg Config) (int64, error) {
	topic := cfg.Topics.Snapshots
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

// StartReplica runs a serving replica fed by the snapshots topic, with
// its API at / of the process's routes, and returns it.
func StartReplica(p *Process) (*serve.Replica, error) {
	cfg := p.Config
	reg, err := cfg.Registry()
	if err != nil {
		return nil, err
	}
	if err := cfg.keyLoaded(); err != nil {
		return nil, err
	}
	key := cfg.Secrets.SnapshotKey
	if key == nil {
		p.Logf("serve: snapshot.insecure is true: snapshots and control records are not authenticated")
	}
	opts := cfg.Serve.ReplicaOptions(reg)
	opts.StateFile = filepath.Join(cfg.DataDir, "serve", "rollback.json")
	opts.AdminToken, opts.APIToken, opts.Metrics, opts.Logf = cfg.Secrets.AdminToken, cfg.Secrets.APIToken, p.Metrics, p.Logf
	r, err := serve.NewReplica(opts)
	if err != nil {
		return nil, err
	}
	p.Mux.Handle("/", r.Handler())
	var logged time.Time // full snapshots are logged at most once a minute
	apply := func(u *snapshot.Update) error {
		start := time.Now()
		err := r.Apply(u)
		if p.Hooks.Applied != nil {
			p.Hooks.Applied(u, start, time.Now())
		}
		if err != nil {
			return err
		}
		if m := u.Manifest; m.Kind == snapshot.KindFull && time.Since(logged) >= time.Minute {
			logged = time.Now()
			p.Logf("serve: full snapshot version %d live (watermark %s, %d examples, %d rows, %d items)",
				m.Version, m.Watermark.Format(time.RFC3339), m.Applied, m.Rows, m.Items)
		}
		return nil
	}
	var from *int64
	if o, ok := r.RestoreFrom(); ok {
		from = &o
	}
	p.Go("subscribe", func(ctx context.Context) error {
		return snapshot.Subscribe(ctx, snapshot.SubscriberOptions{Client: cfg.Kafka, Topic: cfg.Topics.Snapshots, Key: key, From: from, MaxBytes: cfg.Snapshot.MaxBytes,
			ModelID: cfg.Snapshot.ModelID, ControlMaxAge: cfg.Snapshot.ControlMaxAge, Metrics: p.Metrics, Logf: p.Logf},
			snapshot.Handler{Apply: apply, Control: r.Control})
	})
	p.Go("popularity", func(ctx context.Context) error {
		return r.FollowEvents(ctx, cfg.Kafka, cfg.Topics.Events, 100_000)
	})
	p.Go("catalog", func(ctx context.Context) error {
		return r.FollowCatalog(ctx, cfg.Kafka, cfg.Topics.Catalog)
	})
	return r, nil
}
