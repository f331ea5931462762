package online

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
	"github.com/unirec/unirec/stream/streamtest"
)

// walFault fails the writes or the syncs of Pebble's WAL with errno once
// armed: what a full disk (ENOSPC) or a failing one (EIO) does to a
// commit. It counts the operations it failed.
type walFault struct {
	errno syscall.Errno
	sync  bool // fail syncs; false: fail writes
	armed atomic.Bool
	hits  atomic.Int64
}

func (f *walFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if !f.sync {
			return nil
		}
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
		if f.sync {
			return nil
		}
	default:
		return nil
	}
	f.hits.Add(1)
	what := "write"
	if f.sync {
		what = "sync"
	}
	return &os.PathError{Op: what, Path: op.Path, Err: f.errno}
}

func (f *walFault) String() string { return "wal " + f.errno.Error() }

// A full or failing disk under the parameter store, on a WAL write or
// sync while the trainer learns and commits. The trainer runs in a child
// process (this test binary again): Pebble treats a WAL error as fatal,
// and when it strikes while a WAL is rotated Pebble panics with its lock
// released, which no recover survives. The child stops: Run fails with an
// error naming the store, the commit and the cause, or Pebble kills it.
// The store keeps a commit whose rows and offsets agree (the model of
// exactly the examples before its offset); once the disk is back, a
// reopened trainer resumes there and ends with exactly the model of a run
// without faults.
func TestStoreFaultsStopTheTrainerAndResumeExactly(t *testing.T) {
	skipUnderRace(t)
	exs := synthExamples(t, 1500)
	n := int64(len(exs))
	b, err := stream.StartBroker(stream.BrokerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	copts := stream.Plaintext(b.Addr())
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic("examples"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if err := stream.EnsureTopics(ctx, cl, []stream.TopicSpec{{Name: "examples", Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	recs := make([]*kgo.Record, len(exs))
	for i := range exs {
		recs[i] = &kgo.Record{Value: stream.AppendExample(nil, &exs[i])}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	clean := openTest(t, TrainerOptions{})
	applyAll(t, clean, exs)
	want := capture(t, clean)
	clean.Close()

	for _, tc := range []struct {
		name, fault string
		errno       syscall.Errno
	}{
		{"ENOSPC on WAL write", "ENOSPC write", syscall.ENOSPC},
		{"EIO on WAL write", "EIO write", syscall.EIO},
		{"ENOSPC on WAL sync", "ENOSPC sync", syscall.ENOSPC},
		{"EIO on WAL sync", "EIO sync", syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestStoreFaultChild$", "-test.v")
			cmd.Env = append(os.Environ(), "UNIREC_STORE_FAULT="+tc.fault, "UNIREC_STORE_FAULT_DIR="+dir,
				"UNIREC_STORE_FAULT_BROKER="+b.Addr(), fmt.Sprint("UNIREC_STORE_FAULT_AT=", n/3))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the child trainer did not fail: %v\n%s", err, out)
			}
			stopped := regexp.MustCompile(`applied (\d+) when Run failed: (.*)`).FindSubmatch(out)
			how := "killed by Pebble: " + firstLine(out, "panic: ")
			if stopped != nil {
				for _, want := range []string{"cannot commit parameter store at \"" + dir + "\"", tc.errno.Error()} {
					if !strings.Contains(string(stopped[2]), want) {
						t.Fatalf("Run failed with %s: want it to say %q", stopped[2], want)
					}
				}
				how = "Run failed: " + string(stopped[2])
			}
			reported := firstLine(out, "parameter store at \""+dir+"\": cannot ")
			if !strings.Contains(reported, tc.errno.Error()) {
				t.Fatalf("the child stopped without a line naming the store and %v:\n%s", tc.errno, out)
			}

			again := openTest(t, TrainerOptions{Dir: dir, Client: copts, Topic: "examples", CommitInterval: time.Millisecond})
			committed := capture(t, again)
			off := again.Offsets()[0]
			// The fault may strike the commit being synced when it was
			// armed (commits are synced beside learning) or after the last
			// commit (a sync at close): then the store holds every example.
			if off != committed.Applied || off+2*batchSize < n/3 || off > n {
				t.Fatalf("reopened store: offset %d, applied %d (fault armed at %d of %d): rows and offsets disagree", off, committed.Applied, n/3, n)
			}
			prefix := openTest(t, TrainerOptions{})
			applyAll(t, prefix, exs[:off])
			sameModel(t, capture(t, prefix), committed)
			prefix.Close()
			if off < n {
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- again.Run(rctx) }()
				streamtest.WaitFor(t, 60*time.Second, "the reopened trainer to learn every example", func() bool { return again.Offsets()[0] == n })
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			sameModel(t, want, capture(t, again))
			if err := again.Close(); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s; logged %q; the store kept offset %d = applied %d of %d, identical to a clean run of that prefix; resumed to the clean model of all %d",
				tc.name, how, reported, off, committed.Applied, n, n)
		})
	}
}

// TestStoreFaultChild is the trainer of TestStoreFaultsStopTheTrainerAndResumeExactly,
// run as a child process: it learns from the examples topic and arms the
// WAL fault once it has applied UNIREC_STORE_FAULT_AT examples.
func TestStoreFaultChild(t *testing.T) {
	spec := os.Getenv("UNIREC_STORE_FAULT")
	if spec == "" {
		t.Skip("the child of TestStoreFaultsStopTheTrainerAndResumeExactly")
	}
	errno, op, _ := strings.Cut(spec, " ")
	fault := &walFault{errno: map[string]syscall.Errno{"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO}[errno], sync: op == "sync"}
	var at int64
	fmt.Sscan(os.Getenv("UNIREC_STORE_FAULT_AT"), &at)
	tr := openTest(t, TrainerOptions{Dir: os.Getenv("UNIREC_STORE_FAULT_DIR"), FS: errorfs.Wrap(vfs.Default, fault),
		Client: stream.Plaintext(os.Getenv("UNIREC_STORE_FAULT_BROKER")), Topic: "examples", CommitInterval: time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- tr.Run(context.Background()) }()
	var err error
	streamtest.WaitFor(t, 60*time.Second, "Run to fail", func() bool {
		if tr.Applied() >= at {
			fault.armed.Store(true)
		}
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	fmt.Printf("applied %d when Run failed: %v\n", tr.Applied(), err)
	if cerr := tr.Close(); cerr != nil {
		fmt.Printf("close: %v\n", cerr)
	}
	os.Exit(3)
}

// firstLine returns the first line of out that holds prefix, from there.
func firstLine(out []byte, prefix string) string {
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return l[i:]
		}
	}
	return ""
}
