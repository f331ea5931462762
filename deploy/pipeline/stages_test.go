package pipeline

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// testConfig is the default config of `unirec run` on a fresh embedded
// broker, with fast intervals and its data (and generated key) in a
// temporary directory.
func testConfig(t *testing.T) Config {
	t.Helper()
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cfg := DefaultConfig()
	cfg.EnsureDefaults()
	cfg.DataDir, cfg.Kafka.Brokers, cfg.Role = t.TempDir(), []string{b.Addr()}, RoleAll // generates its snapshot key
	cfg.Snapshot.Interval, cfg.Trainer.CommitInterval, cfg.Trainer.LeaseSessionTimeout = 50*time.Millisecond, 50*time.Millisecond, 6*time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.LoadSecrets(); err != nil {
		t.Fatal(err)
	}
	if err := EnsureTopics(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// produceExamples appends n examples to the examples topic.
func produceExamples(t *testing.T, cfg Config, n int) {
	t.Helper()
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.DefaultProduceTopic(cfg.Topics.Examples))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		ex := stream.Example{Task: "search", ItemID: fmt.Sprint("m-", i%7), Label: float32(i % 2), Weight: 1, EventTime: int64(i),
			Context: []stream.Field{{Name: "user_id", Value: fmt.Sprint("u-", i%5)}}}
		recs = append(recs, &kgo.Record{Value: stream.AppendExample(nil, &ex)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A trainer that takes the lease behind the previous leader (here: a
// fresh store, while the newest manifest says 40 examples were learned)
// publishes nothing until it has learned up to the previous leader's
// offsets: its first snapshot is never behind what replicas serve.
func TestNewLeaderPublishesOnlyOnceCaughtUp(t *testing.T) {
	cfg := testConfig(t)
	ctx := context.Background()
	prev, _ := json.Marshal(snapshot.Manifest{ModelID: cfg.Snapshot.ModelID, Version: 3, Kind: snapshot.KindFull, Offsets: map[int32]int64{0: 40}})
	cl, err := kgo.NewClient(cfg.Kafka.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	mac := hmac.New(sha256.New, cfg.Secrets.SnapshotKey) // signed with the key, as the previous leader's was
	mac.Write(prev)
	sig := []kgo.RecordHeader{{Key: "unirec.hmac", Value: []byte(hex.EncodeToString(mac.Sum(nil)))}}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.Snapshots, Key: []byte("manifest"), Value: prev, Headers: sig}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produceExamples(t, cfg, 20)
	var mu sync.Mutex
	var published []*snapshot.Manifest
	var logged []string
	p := NewProcess(ctx, cfg, func(format string, args ...any) {
		t.Logf(format, args...)
		mu.Lock()
		logged = append(logged, fmt.Sprintf(format, args...))
		mu.Unlock()
	})
	p.Hooks.Published = func(m *snapshot.Manifest, _ time.Duration) { mu.Lock(); published = append(published, m); mu.Unlock() }
	if err := StartTrainer(p); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	streamtest.WaitFor(t, 30*time.Second, "the leader to wait for the previous leader's offsets, or to publish", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(published) > 0 || slices.ContainsFunc(logged, func(l string) bool { return strings.Contains(l, "publishing nothing until caught up") })
	})
	produceExamples(t, cfg, 20)
	streamtest.WaitFor(t, 30*time.Second, "a snapshot", func() bool { mu.Lock(); defer mu.Unlock(); return len(published) > 0 })
	mu.Lock()
	defer mu.Unlock()
	if first := published[0]; first.Offsets[0] < 40 || first.Version <= 3 {
		t.Fatalf("the new leader's first snapshot is version %d at offset %d; want above version 3, at offset 40 or more", first.Version, first.Offsets[0])
	}
}

// startReplica starts a replica process of cfg and returns it and its
// replica.
func startReplica(t *testing.T, cfg Config) (*Process, *serve.Replica) {
	t.Helper()
	p := NewProcess(context.Background(), cfg, t.Logf)
	r, err := StartReplica(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, r
}

// A rollback outlives the replica: restarted on the same data dir, after
// newer full snapshots were published, the replica rebuilds the
// rolled-back-to version from its full snapshot and serves it, with the
// newest version applied behind it; resume ends it for good.
func TestRollbackSurvivesReplicaRestart(t *testing.T) {
	cfg := testConfig(t)
	cfg.Snapshot.FullInterval = 200 * time.Millisecond
	trainer := NewProcess(context.Background(), cfg, t.Logf)
	if err := StartTrainer(trainer); err != nil {
		t.Fatal(err)
	}
	defer trainer.Stop()
	first, r := startReplica(t, cfg)
	defer first.Stop()
	versions := func(r *serve.Replica, n int) {
		t.Helper()
		streamtest.WaitFor(t, 30*time.Second, fmt.Sprintf("%d versions", n), func() bool {
			if len(r.Versions()) < n {
				produceExamples(t, cfg, 10)
				return false
			}
			return true
		})
	}
	versions(r, 3)
	target := r.Versions()[0]
	if err := r.Rollback(target); err != nil {
		t.Fatal(err)
	}
	head := func(r *serve.Replica) int64 { vs := r.Versions(); return vs[len(vs)-1] }
	streamtest.WaitFor(t, 30*time.Second, "a newer full snapshot", func() bool {
		produceExamples(t, cfg, 10)
		return head(r) > target+8
	})
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	second, r2 := startReplica(t, cfg)
	defer second.Stop()
	streamtest.WaitFor(t, 30*time.Second, fmt.Sprintf("the restarted replica to hold version %d", target), func() bool {
		m := r2.Model()
		return m != nil && m.Version == target && head(r2) > target+8
	})
	r2.Resume()
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	third, r3 := startReplica(t, cfg)
	defer third.Stop()
	streamtest.WaitFor(t, 30*time.Second, "the newest version after resume and restart", func() bool {
		m := r3.Model()
		return m != nil && m.Version > target+8
	})
}
