package snapshot

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream/streamtest"
)

// A junk chunk inside a snapshot's own transaction, committed with the
// real chunks and the signed manifest, is refused and counted, and the
// replica never serves a model built from it. Undecodable bytes are
// dropped and the snapshot, whose every chunk the manifest authenticates,
// is applied exactly as published; a CRC-valid chunk of the same version
// and index carrying other data spoils the snapshot: it is refused, the
// served version and model stay the last good ones, and the next full
// snapshot applies.
func TestJunkChunkInsideATransactionIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		junk    func(version int64) []byte
		applies bool // the authentic snapshot around the junk
	}{
		{"undecodable", func(int64) []byte { return []byte("URS1 junk, not a chunk") }, true},
		{"forged chunk 0", func(v int64) []byte { return encodeChunks(v, []byte(strings.Repeat("junk", 300)), 4096)[0] }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testKey, EncodingFloat32)
			f := e.follow(testKey)
			good := e.publish(true)
			streamtest.WaitFor(t, 30*time.Second, "the first snapshot", func() bool { return f.version() == good.Version })
			served := e.pub.prev

			e.train(50)
			c, err := e.tr.Capture()
			if err != nil {
				t.Fatal(err)
			}
			c.Version = good.Version + 1
			payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
			chunks := encodeChunks(c.Version, payload, 4096)
			m := &Manifest{Version: c.Version, Kind: KindFull, Config: c.Config, Encoding: EncodingFloat32, Chunks: len(chunks),
				Checksum: checksum(payload), Bytes: len(payload), Rows: len(c.IDs), Items: len(c.Items), Tasks: len(c.Tasks), Memory: len(c.Memory)}
			for _, ch := range chunks {
				m.ChunkCRCs = append(m.ChunkCRCs, chunkCRC(ch))
			}
			withJunk := append([][]byte{chunks[0], tc.junk(c.Version)}, chunks[1:]...)
			if err := e.pub.produce(context.Background(), m, withJunk); err != nil { // one transaction, committed
				t.Fatal(err)
			}
			want := []int64{good.Version}
			if tc.applies {
				streamtest.WaitFor(t, 30*time.Second, "the snapshot around the junk", func() bool { return f.version() == c.Version })
				sameModel(t, f, c)
				want = append(want, c.Version)
			} else {
				streamtest.WaitFor(t, 30*time.Second, "the snapshot to be refused", func() bool { return f.rejected("corrupt") > 0 })
				sameModel(t, f, served)
			}
			corrupt := f.rejected("corrupt")

			next := e.publish(true)
			streamtest.WaitFor(t, 30*time.Second, "the next full snapshot", func() bool { return f.version() == next.Version })
			f.mu.Lock()
			applied := append([]int64(nil), f.applied...)
			f.mu.Unlock()
			if want = append(want, next.Version); !reflect.DeepEqual(applied, want) || corrupt == 0 {
				t.Fatalf("applied %v, want %v; %d refused as corrupt", applied, want, corrupt)
			}
			sameModel(t, f, e.pub.prev)
			t.Logf("%s: %d records refused as corrupt; applied %v", tc.name, corrupt, applied)
		})
	}
}

// Forged control records - one signed with another key, and a real
// signed rollback whose body was altered (version and age) with its
// signature kept - are refused as unauthenticated and counted, never
// obeyed; the authentic record after them is.
func TestForgedControlRecordsAreRefused(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	now := time.Unix(1_800_000_000, 0)
	w := e.watchControls(now)
	if err := PublishControl(context.Background(), e.copts, topic, []byte("another-key-of-16+bytes"),
		Control{Action: ActionRollback, Version: 2, ModelID: "test", Created: now}); err != nil {
		t.Fatal(err)
	}
	// The real record is signed over its body; the forger edits the body.
	real := &kgo.Record{Key: []byte(controlKey), Value: []byte(`{"action":"rollback","version":5,"model_id":"test","created":"` +
		now.Add(-time.Minute).UTC().Format(time.RFC3339Nano) + `"}`)}
	sign(testKey, real)
	forged := &kgo.Record{Topic: topic, Key: real.Key, Headers: real.Headers,
		Value: []byte(strings.Replace(string(real.Value), `"version":5`, `"version":1`, 1))}
	cl, err := kgo.NewClient(e.copts.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), forged).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := PublishControl(context.Background(), e.copts, topic, testKey, Control{Action: ActionRollback, Version: 3, ModelID: "test", Created: now}); err != nil {
		t.Fatal(err)
	}
	streamtest.WaitFor(t, 30*time.Second, "the authentic record to be obeyed", func() bool { return len(w.obeyed()) > 0 })
	if got := w.obeyed(); len(got) != 1 || got[0].Version != 3 || w.rejected("unauthenticated") != 2 {
		t.Fatalf("obeyed %+v, %d refused as unauthenticated; want only version 3 obeyed and both forgeries refused", got, w.rejected("unauthenticated"))
	}
}
