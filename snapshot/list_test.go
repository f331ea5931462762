package snapshot

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// handmade publishes, through e's publisher's transaction, a snapshot of
// the trainer's current model with the given kind and base, spoiled by
// spoil (nil: intact).
func (e *env) handmade(kind string, base int64, spoil func(m *Manifest, chunks [][]byte)) int64 {
	e.t.Helper()
	e.train(20)
	c, err := e.tr.Capture()
	if err != nil {
		e.t.Fatal(err)
	}
	payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
	chunks := encodeChunks(c.Version, payload, 4096)
	m := &Manifest{Version: c.Version, Kind: kind, BaseVersion: base, Config: c.Config, Encoding: EncodingFloat32, Chunks: len(chunks),
		Checksum: checksum(payload), Bytes: len(payload), Rows: len(c.IDs), Items: len(c.Items), Tasks: len(c.Tasks), Memory: len(c.Memory)}
	for _, ch := range chunks {
		m.ChunkCRCs = append(m.ChunkCRCs, chunkCRC(ch))
	}
	if spoil != nil {
		spoil(m, chunks)
	}
	if err := e.pub.produce(context.Background(), m, chunks); err != nil {
		e.t.Fatal(err)
	}
	return c.Version
}

// List reports every snapshot and control record with what a replica
// holding the key would make of it: a corrupt chunk, a wrong payload
// checksum, a forged or missing signature, and deltas off the chain are
// UNUSABLE; the good chain and signed control records are usable.
func TestListFlagsBadSnapshots(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	ctx := context.Background()
	delta := func() int64 {
		e.train(5)
		m, err := e.pub.Publish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind != KindDelta {
			t.Fatalf("version %d is a %s snapshot, want a delta", m.Version, m.Kind)
		}
		return m.Version
	}
	forger, err := NewPublisher(PublisherOptions{Client: e.copts, Topic: topic, TransactionalID: "forger", ModelID: "test",
		Key: []byte("not-the-replicas-key-16"), ChunkSize: 4096}, e.tr)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()

	a := e.publish(true).Version
	b := delta()
	corrupt := e.handmade(KindFull, 0, func(_ *Manifest, chunks [][]byte) { chunks[0][len(chunks[0])-1] ^= 1 })
	forged, err := forger.PublishFull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := delta() // on b: the corrupt and forged snapshots are not in the chain
	offBase := e.handmade(KindDelta, a, nil)
	afterBreak := delta() // on offBase's predecessor d, but the chain broke
	g := e.publish(true).Version
	badSum := e.handmade(KindFull, 0, func(m *Manifest, _ [][]byte) { m.Checksum = strings.Repeat("0", 64) })
	if err := PublishControl(ctx, e.copts, topic, testKey, Control{Action: ActionRollback, Version: g, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := PublishControl(ctx, e.copts, topic, nil, Control{Action: ActionResume, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}

	got, err := List(ctx, ListOptions{Client: e.copts, Topic: topic, Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		kind    string
		version int64
		sig     string
		usable  bool
		problem string
	}{
		{KindFull, a, SignatureValid, true, ""},
		{KindDelta, b, SignatureValid, true, ""},
		{KindFull, corrupt, SignatureValid, false, "fails its CRC"},
		{KindFull, forged.Version, SignatureForged, false, "signature forged"},
		{KindDelta, d, SignatureValid, true, ""},
		{KindDelta, offBase, SignatureValid, false, "newest usable snapshot before it is version " + strconv.FormatInt(d, 10)},
		{KindDelta, afterBreak, SignatureValid, false, "the chain is broken before it"},
		{KindFull, g, SignatureValid, true, ""},
		{KindFull, badSum, SignatureValid, false, "payload checksum mismatch"},
		{EntryControl, g, SignatureValid, true, ""},
		{EntryControl, 0, SignatureUnsigned, false, "signature unsigned"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Kind != w.kind || e.Version != w.version || e.Signature != w.sig || e.Usable != w.usable ||
			!strings.Contains(strings.Join(e.Problems, "; "), w.problem) {
			t.Errorf("entry %d: got %s v%d signature %s usable %v problems %q; want %s v%d %s %v %q",
				i, e.Kind, e.Version, e.Signature, e.Usable, e.Problems, w.kind, w.version, w.sig, w.usable, w.problem)
		}
	}
	if e := got[1]; e.BaseVersion != a || e.Encoding != EncodingFloat32 || e.Chunks == 0 || e.ChunksPresent != e.Chunks || e.Bytes == 0 {
		t.Errorf("delta entry lacks its details: %+v", e)
	}
}

// Without a key, signed records are unchecked and unsigned ones accepted,
// as a replica without a key would.
func TestListWithoutKey(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	e.publish(true)
	if err := PublishControl(context.Background(), e.copts, topic, nil, Control{Action: ActionResume, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := List(context.Background(), ListOptions{Client: e.copts, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Signature != SignatureUnchecked || !got[0].Usable || got[1].Signature != SignatureUnsigned || !got[1].Usable {
		t.Fatalf("got %+v", got)
	}
}

// FuzzList: no sequence of records (chunks, manifests, control records,
// junk) makes the lister panic; each manifest and control record gives one
// entry, and an entry is usable only without problems.
func FuzzList(f *testing.F) {
	c := testCapture()
	payload, _ := encodePayload(Diff(nil, c), EncodingFloat32)
	chunks := encodeChunks(c.Version, payload, 100)
	f.Add(chunks[0], []byte(`{"version":3,"kind":"delta","base_version":2,"chunks":2}`), []byte(`{"action":"rollback","version":1}`))
	f.Add([]byte("URS1"), []byte(`{}`), []byte(`{"action":"resume"}`))
	f.Fuzz(func(t *testing.T, chunk, manifest, control []byte) {
		l := &lister{key: testKey}
		for _, r := range []*kgo.Record{{Key: []byte("chunk/0"), Value: chunk}, {Key: []byte(manifestKey), Value: manifest},
			{Key: []byte(controlKey), Value: control}} {
			l.record(r)
		}
		if len(l.out) != 2 {
			t.Fatalf("%d entries, want 2", len(l.out))
		}
		for _, e := range l.out {
			if e.Usable == (len(e.Problems) > 0) || e.Usable {
				t.Fatalf("unsigned record judged usable with key: %+v", e)
			}
		}
	})
}

// List flags a replayed copy of an old signed snapshot and of an obeyed
// control record, as replicas refuse them.
func TestListFlagsReplays(t *testing.T) {
	e := newEnv(t, testKey, EncodingFloat32)
	first := e.publish(true)
	e.publish(false)
	ctx := context.Background()
	if err := PublishControl(ctx, e.copts, topic, testKey, Control{Action: ActionResume, ModelID: "test", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	replayRecords(t, e.copts, func(r *kgo.Record) bool {
		return r.Offset <= first.FullOffset+int64(first.Chunks) || string(r.Key) == controlKey
	})
	entries, err := List(ctx, ListOptions{Client: e.copts, Topic: topic, Key: testKey, ModelID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var replays int
	for _, en := range entries {
		if !en.Usable && strings.Contains(strings.Join(en.Problems, ";"), "replayed") {
			replays++
		}
	}
	if n := len(entries); replays != 2 || n != 5 {
		t.Fatalf("%d entries, %d flagged as replays; want 5 and 2: %+v", n, replays, entries)
	}
}
