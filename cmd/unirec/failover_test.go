package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/deploy/pipeline"
	"github.com/unirec/unirec/online"
	"github.com/unirec/unirec/snapshot"
	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// leader says whether the trainer process holds the lease (false when it
// does not answer).
func (p *trainerProc) leader() bool {
	resp, err := http.Get("http://" + p.http + "/v1/trainer/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var m struct {
		Leader bool `json:"leader"`
	}
	return json.NewDecoder(resp.Body).Decode(&m) == nil && m.Leader
}

// metric reads one value of the process' /metrics (-1 when absent).
func (p *trainerProc) metric(name string) float64 {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			var v float64
			json.Unmarshal([]byte(rest), &v)
			return v
		}
	}
	return -1
}

// committedVersions reads the versions of every committed snapshot
// manifest, in log order.
func committedVersions(t *testing.T, broker string) []int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("unirec.snapshots"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []int64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		f := cl.PollFetches(ctx)
		cancel()
		if f.Empty() || f.Err() != nil {
			return out
		}
		f.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "manifest" {
				var m struct {
					Version int64 `json:"version"`
				}
				if err := json.Unmarshal(r.Value, &m); err != nil {
					t.Fatalf("manifest at offset %d: %v", r.Offset, err)
				}
				out = append(out, m.Version)
			}
		})
	}
}

// Two real trainer processes: the first leads and publishes, the second
// trains as a hot standby and publishes nothing. When the leader is
// paused past its session (a zombie), the standby takes the lease and
// publishes versions above the old leader's; when the zombie resumes, its
// publisher is fenced by the shared transactional id and nothing it does
// reaches the snapshots topic.
func TestTrainerFailoverFencesTheZombie(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.GroupMinSessionTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	dir := t.TempDir()
	cfg := filepath.Join(dir, "train.yaml")
	if err := os.WriteFile(cfg, []byte("snapshot:\n  interval: 100ms\n  hmac_key_file: "+testKey(t, dir)+"\ntrainer:\n  commit_interval: 50ms\n  lease_session_timeout: 1s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exs := synthStream(t, 3000)
	third := len(exs) / 3
	produceExamples(t, broker, exs[:third])

	a := startTrainerProc(t, cfg, broker, filepath.Join(dir, "a"))
	streamtest.WaitFor(t, 30*time.Second, "the first trainer to lead and publish", func() bool {
		return a.leader() && a.metric("unirec_snapshot_version") > 0
	})
	b := startTrainerProc(t, cfg, broker, filepath.Join(dir, "b"))
	streamtest.WaitFor(t, 30*time.Second, "the standby to train the whole stream", func() bool { return b.applied() == int64(third) })
	if b.leader() || b.metric("unirec_snapshot_version") > 0 {
		t.Fatal("the standby leads or published while the leader is alive")
	}

	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	produceExamples(t, broker, exs[third:2*third])
	streamtest.WaitFor(t, 30*time.Second, "the standby to take over and publish the new examples", func() bool {
		return b.leader() && b.metric("unirec_snapshot_version") > 0 && b.applied() == int64(2*third)
	})
	before := committedVersions(t, broker)

	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	produceExamples(t, broker, exs[2*third:])
	streamtest.WaitFor(t, 30*time.Second, "the new leader to publish the last examples", func() bool {
		return b.applied() == int64(len(exs)) && b.metric("unirec_snapshot_version") > float64(before[len(before)-1])
	})
	streamtest.WaitFor(t, 30*time.Second, "the zombie to step down or exit", func() bool { return !a.leader() })
	versions := committedVersions(t, broker)
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Fatalf("committed snapshot versions do not increase: %v", versions)
		}
	}
	t.Logf("committed versions %v; zombie log:\n%s", versions, tail(a.log.String(), 5))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// The fencing the failover relies on: a publisher created with the same
// transactional id (a new leader's) makes the old one's next snapshot
// transaction fail, so a zombie that still believes it leads cannot
// publish.
func TestSharedTransactionalIDFencesTheOldPublisher(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := pipeline.DefaultConfig()
	cfg.EnsureDefaults()
	cfg.Kafka = stream.Plaintext(c.ListenAddrs()...)
	cfg.DataDir = t.TempDir()
	ctx := context.Background()
	if err := pipeline.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	produceExamples(t, cfg.Kafka.Brokers[0], synthStream(t, 50))
	publisher := func(name string) (*snapshot.Publisher, *online.Trainer) {
		opts := cfg.TrainerOptions()
		opts.Dir = filepath.Join(cfg.DataDir, name)
		tr, err := online.OpenTrainer(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		ex := synthStream(t, 1)[0]
		tr.Apply(&ex)
		pub, err := snapshot.NewPublisher(snapshot.PublisherOptions{Client: cfg.Kafka, Topic: cfg.Topics.Snapshots,
			TransactionalID: cfg.Snapshot.TransactionalID, ModelID: "m"}, tr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Close)
		return pub, tr
	}
	zombie, zt := publisher("zombie")
	if _, err := zombie.Publish(ctx); err != nil {
		t.Fatalf("the first leader cannot publish: %v", err)
	}
	leader, _ := publisher("leader")
	if _, err := leader.Publish(ctx); err != nil {
		t.Fatalf("the new leader cannot publish: %v", err)
	}
	ex := synthStream(t, 2)[1]
	zt.Apply(&ex)
	if _, err := zombie.Publish(ctx); err == nil {
		t.Fatal("the old publisher published after a new one took its transactional id")
	} else {
		t.Logf("zombie publish: %v", err)
	}
	if got := committedVersions(t, cfg.Kafka.Brokers[0]); len(got) != 2 {
		t.Fatalf("committed snapshots %v, want the first leader's and the new leader's only", got)
	}
}
