package online

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
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

// storeFault fails the writes (creates included) or the syncs of the
// store's files whose name holds file (".log": the WAL, ".sst": tables,
// "MANIFEST") with errno once armed: what a full disk (ENOSPC) or a
// failing one (EIO) does. It counts the operations it failed.
type storeFault struct {
	errno syscall.Errno
	sync  bool   // fail syncs; false: fail writes
	file  string // ".log", ".sst" or "MANIFEST" (a part of the name)
	armed atomic.Bool
	hits  atomic.Int64
}

func (f *storeFault) MaybeError(op errorfs.Op) error {
	if !f.armed.Load() || !strings.Contains(filepath.Base(op.Path), f.file) {
		return nil
	}
	switch op.Kind {
	case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		if !f.sync {
			return nil
		}
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpCreate:
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

func (f *storeFault) String() string { return f.file + " " + f.errno.Error() }

// A full or failing disk under the parameter store, on a write or sync of
// its WAL or its MANIFEST (after a flush) while the trainer learns and
// commits. The trainer runs in a child process (this test binary again):
// Pebble treats a WAL error as fatal, and when it strikes while a WAL is
// rotated Pebble panics with its lock released, which no recover
// survives; a MANIFEST error ends the process through Pebble's Fatalf.
// The child stops: Run fails with an error naming the store, the commit
// and the cause, or Pebble kills it.
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
		{"ENOSPC on MANIFEST write", "ENOSPC write MANIFEST", syscall.ENOSPC},
		{"EIO on MANIFEST sync", "EIO sync MANIFEST", syscall.EIO},
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
			how := "killed by Pebble: " + cmp.Or(firstLine(out, "panic: "), firstLine(out, "pebble: "))
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

// A full or failing disk when Pebble writes a table (a flush) is not
// fatal: Pebble retries the flush, commits go on into its log, and once
// the disk is back the flush succeeds and nothing is lost: the trainer's
// model, and the store's after a reopen, are those of a run without
// faults. The retries are backed off and the failures logged at most once
// a second (Pebble alone retried 40,000 times in 4 s, two lines each).
func TestStoreTableFaultIsRetriedAndLosesNothing(t *testing.T) {
	exs := synthExamples(t, 1500)
	clean := openTest(t, TrainerOptions{})
	applyAll(t, clean, exs)
	want := capture(t, clean)
	clean.Close()
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		var logged bytes.Buffer
		log.SetOutput(&logged)
		fault := &storeFault{errno: errno, file: ".sst"}
		dir := t.TempDir()
		tr := openTest(t, TrainerOptions{Dir: dir, FS: errorfs.Wrap(vfs.Default, fault)})
		applyAll(t, tr, exs[:len(exs)/2])
		if err := tr.Commit(); err != nil {
			t.Fatal(err)
		}
		fault.armed.Store(true)
		start := time.Now()
		flushed := make(chan struct{})
		go func() { tr.store.db.Flush(); close(flushed) }()
		applyAll(t, tr, exs[len(exs)/2:])
		if err := tr.Commit(); err != nil {
			t.Fatalf("%v: a commit failed while tables could not be written: %v", errno, err)
		}
		streamtest.WaitFor(t, 10*time.Second, "the flush to be retried", func() bool { return fault.hits.Load() >= 4 })
		elapsed := time.Since(start)
		fault.armed.Store(false)
		select {
		case <-flushed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: the flush did not succeed once the disk was back", errno)
		}
		log.SetOutput(os.Stderr)
		hits, lines := fault.hits.Load(), strings.Count(logged.String(), "parameter store at")
		if maxHits := int64(elapsed/tableBackoff) + 2; hits > maxHits {
			t.Errorf("%v: %d failed table writes in %v: not backed off (at most %d)", errno, hits, elapsed, maxHits)
		}
		if maxLines := int(elapsed/time.Second) + 2; lines == 0 || lines > maxLines || !strings.Contains(logged.String(), errno.Error()) {
			t.Errorf("%v: %d lines reporting %d failures in %v, want 1 to %d naming the cause:\n%s", errno, lines, hits, elapsed, maxLines, logged.String())
		}
		sameModel(t, want, capture(t, tr))
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		again := openTest(t, TrainerOptions{Dir: dir})
		sameModel(t, want, capture(t, again))
		again.Close()
		t.Logf("%v on table writes: %d failures in %v, %d lines logged; the model is the clean one", errno, hits, elapsed.Round(time.Millisecond), lines)
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
	fields := strings.Fields(spec) // errno, write or sync, and the file (WAL when absent)
	fault := &storeFault{errno: map[string]syscall.Errno{"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO}[fields[0]], sync: fields[1] == "sync", file: ".log"}
	if len(fields) > 2 {
		fault.file = fields[2]
	}
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
			if fault.file != ".log" {
				tr.store.db.AsyncFlush() // the MANIFEST is written when a flush ends
			}
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
