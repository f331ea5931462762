package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// SubscriberOptions configures Subscribe.
type SubscriberOptions struct {
	Client stream.ClientOptions
	Topic  string
	// Key verifies every manifest and control record (HMAC-SHA256); a
	// record that fails is rejected. Nil accepts unsigned records.
	Key []byte
	// ModelID, when set, is the only model whose manifests and control
	// records are accepted (a key shared by two models cannot mix them).
	ModelID string
	// ControlMaxAge refuses control records created longer ago (a replayed
	// old command); 0 takes DefaultControlMaxAge.
	ControlMaxAge time.Duration
	// Now is the clock control records are aged by (time.Now when nil).
	Now func() time.Time
	// MaxBytes bounds the chunk bytes buffered for one snapshot before its
	// manifest is checked (chunks are not authenticated until then); a
	// snapshot over it is dropped and its chunks counted as too_large. 0
	// takes DefaultMaxBytes.
	MaxBytes int
	// From, when set, is an offset the subscription starts at or before:
	// the full snapshot of a version a restarted replica must rebuild (a
	// rollback it kept). One no longer on the topic is ignored.
	From    *int64
	Metrics *metrics.Set
	Logf    func(format string, args ...any)
}

// DefaultMaxBytes is the default bound of one snapshot's buffered chunk
// bytes: 1 GiB, about four times the compressed full snapshot of a
// million rows of dim 64 in float32.
const DefaultMaxBytes = 1 << 30

// DefaultControlMaxAge is how old a control record may be when a replica
// reads it: the minimum retention of the snapshots topic.
const DefaultControlMaxAge = time.Hour

func (o *SubscriberOptions) ensureDefaults() {
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.ControlMaxAge <= 0 {
		o.ControlMaxAge = DefaultControlMaxAge
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Update is one complete, verified snapshot: a full one (the delta from an
// empty model) or a delta on the previous version.
type Update struct {
	Manifest *Manifest
	Delta    *Delta
}

// ErrGap is returned by a Handler's Apply for a delta that does not apply
// to the version it holds; the chain then continues from the next full.
var ErrGap = errors.New("delta does not follow the head of the chain")

// Handler receives what a subscriber reads. Apply returns an error when
// the replica does not serve a snapshot: wrapping ErrGap when it could not
// apply it at all (deltas are then skipped until the next full), else when
// it keeps it as the base of the next delta but does not serve it (a
// failed sanity check).
type Handler struct {
	Apply   func(*Update) error
	Control func(Control)
}

// probeWindow is how many records before the end of the topic a cold
// subscriber reads to find the newest manifest and, through it, the offset
// of the newest full snapshot.
const probeWindow = 256

// Subscribe finds the newest full snapshot, then hands it and every
// snapshot after it to h.Apply in order, and control records to h.Control.
// A delta is applied only on the version it was made from; after a gap (a
// rejected or missing snapshot) deltas are skipped until the next full.
// Versions only move forward: a snapshot whose version is not above the
// newest one applied (a replayed old record) is refused without touching
// the chain, except a full copy of the version at the head, which the
// publisher writes after its delta for cold replicas and is skipped; only a signed rollback serves an older version. A control
// record is obeyed only if it names this model, is younger than
// ControlMaxAge and newer than the last one obeyed.
// Rejections are logged and counted by reason. It returns when ctx ends.
func Subscribe(ctx context.Context, opts SubscriberOptions, h Handler) error {
	opts.ensureDefaults()
	start, err := findStart(ctx, opts)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts.Client.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: {0: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return fmt.Errorf("cannot create snapshot consumer: %w", err)
	}
	defer cl.Close()
	s := &subscriber{opts: opts, h: h, cur: assembly{limit: opts.MaxBytes}, applyH: opts.Metrics.GetOrCreatePrometheusHistogram("unirec_snapshot_apply_seconds")}
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		fetches.EachRecord(s.record)
	}
	return nil
}

// subscriber is the state of one subscription: the snapshot being
// assembled, the version at the head of the applied chain, the newest
// version ever handed over and the creation time of the last control
// record obeyed.
type subscriber struct {
	opts    SubscriberOptions
	h       Handler
	cur     assembly
	head    int64
	top     int64
	gap     bool
	lastCtl time.Time
	applyH  *metrics.PrometheusHistogram
}

func (s *subscriber) reject(reason string, format string, args ...any) {
	s.opts.Metrics.GetOrCreateCounter(fmt.Sprintf("unirec_snapshot_rejected_total{reason=%q}", reason)).Inc()
	logf(s.opts.Logf, "snapshot: rejected "+format, args...)
}

func reason(err error) string {
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return "unauthenticated"
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	}
	return "corrupt"
}

func (s *subscriber) record(r *kgo.Record) {
	if string(r.Key) == controlKey {
		s.control(r)
		return
	}
	m, payload, err := s.cur.add(r, s.opts.Key)
	if err != nil {
		s.reject(reason(err), "record at offset %d: %v", r.Offset, err)
		return
	}
	if m != nil {
		s.snapshot(m, payload)
	}
}

func (s *subscriber) control(r *kgo.Record) {
	var c Control
	if err := verify(s.opts.Key, r); err != nil {
		s.reject("unauthenticated", "control record: %v", err)
		return
	}
	if err := json.Unmarshal(r.Value, &c); err != nil {
		s.reject("corrupt", "control record at offset %d: %v", r.Offset, err)
		return
	}
	if s.opts.ModelID != "" && c.ModelID != s.opts.ModelID {
		s.reject("model_id", "control record at offset %d is for model %q, this replica serves %q", r.Offset, c.ModelID, s.opts.ModelID)
		return
	}
	if age := s.opts.Now().Sub(c.Created); age > s.opts.ControlMaxAge || !c.Created.After(s.lastCtl) {
		s.reject("replay", "control record at offset %d created %s (%s ago): older than the max age %s or not newer than the last one obeyed (%s)",
			r.Offset, c.Created.Format(time.RFC3339Nano), age.Round(time.Second), s.opts.ControlMaxAge, s.lastCtl.Format(time.RFC3339Nano))
		return
	}
	s.lastCtl = c.Created
	if s.h.Control != nil {
		s.h.Control(c)
	}
}

// snapshot applies a complete snapshot if it continues the chain.
func (s *subscriber) snapshot(m *Manifest, payload []byte) {
	if s.opts.ModelID != "" && m.ModelID != s.opts.ModelID {
		s.reject("model_id", "version %d is of model %q, this replica serves %q", m.Version, m.ModelID, s.opts.ModelID)
		return
	}
	if fullOfHead(s.head, s.top, m) {
		s.opts.Metrics.GetOrCreateCounter("unirec_snapshot_full_skipped_total").Inc()
		return
	}
	if m.Version <= s.top {
		s.reject("replay", "version %d is not above version %d, already applied; the served version is unchanged", m.Version, s.top)
		return
	}
	if !continues(s.head, m) {
		if !s.gap || s.head != 0 {
			s.reject("gap", "delta version %d on base %d: the chain is at %d; waiting for the next full snapshot",
				m.Version, m.BaseVersion, s.head)
		}
		s.gap, s.head = true, 0
		return
	}
	start := time.Now()
	d, err := decodePayload(m, payload)
	if err != nil {
		s.reject("corrupt", "version %d: %v", m.Version, err)
		s.head = 0
		return
	}
	if err := s.h.Apply(&Update{Manifest: m, Delta: d}); err != nil {
		if errors.Is(err, ErrGap) {
			s.reject("gap", "version %d: %v", m.Version, err)
			s.head, s.gap = 0, true
			return
		}
		// The replica holds it as the head of its chain but does not serve it.
		s.reject("invalid", "version %d: %v", m.Version, err)
	}
	s.applyH.UpdateDuration(start)
	s.head, s.top, s.gap = m.Version, m.Version, false
}

// fullOfHead says whether m is the full copy of the version at the head
// of the chain, which a publisher writes right after that version's delta
// for cold replicas to start from (Publish): a replica that applied the
// delta serves it already.
func fullOfHead(head, top int64, m *Manifest) bool {
	return m.Kind == KindFull && head != 0 && m.Version == head && head == top
}

// continues says whether m can be applied on head, the version at the head
// of the applied chain (0: none, waiting for a full): a full always can, a
// delta only on exactly its base.
func continues(head int64, m *Manifest) bool {
	return m.Kind != KindDelta || (head != 0 && m.BaseVersion == head)
}

// assembly collects the chunks of one snapshot. The chunks are not
// authenticated until their manifest arrives, so what it buffers is
// bounded: at most limit bytes of chunk data (0: no bound), one snapshot
// at a time (a chunk of another version drops the buffered ones).
type assembly struct {
	version int64
	chunks  [][]byte
	crcs    []uint32
	have    int
	bytes   int
	limit   int
	over    bool // the version went over limit: its chunks are refused
}

// ErrTooLarge is returned for a chunk that would make the snapshot being
// assembled exceed its byte bound; the snapshot is dropped.
var ErrTooLarge = errors.New("snapshot over its byte bound")

// add takes one record; when it completes a snapshot it returns its
// verified manifest and compressed payload.
func (a *assembly) add(r *kgo.Record, key []byte) (*Manifest, []byte, error) {
	if string(r.Key) == manifestKey {
		defer func() { *a = assembly{limit: a.limit} }()
		if err := verify(key, r); err != nil {
			return nil, nil, err
		}
		var m Manifest
		if err := json.Unmarshal(r.Value, &m); err != nil {
			return nil, nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
		}
		if m.Version != a.version || a.have != m.Chunks || len(a.chunks) != m.Chunks {
			return nil, nil, fmt.Errorf("%w: manifest of version %d without its %d chunks", ErrCorrupt, m.Version, m.Chunks)
		}
		if !slices.Equal(a.crcs, m.ChunkCRCs) {
			return nil, nil, fmt.Errorf("%w: chunks of version %d do not match the manifest's checksums", ErrCorrupt, m.Version)
		}
		payload := make([]byte, 0, a.bytes)
		for _, c := range a.chunks {
			payload = append(payload, c...)
		}
		return &m, payload, nil
	}
	c, err := decodeChunk(r.Value)
	if err != nil {
		return nil, nil, err
	}
	if a.over && c.version == a.version {
		return nil, nil, fmt.Errorf("%w: chunk %d of version %d refused, the version is over %d bytes", ErrTooLarge, c.index, c.version, a.limit)
	}
	if c.version != a.version || len(a.chunks) != c.total {
		*a = assembly{version: c.version, chunks: make([][]byte, c.total), crcs: make([]uint32, c.total), limit: a.limit}
	}
	n := a.bytes - len(a.chunks[c.index]) + len(c.data)
	if a.limit > 0 && n > a.limit {
		*a = assembly{version: c.version, limit: a.limit, over: true}
		return nil, nil, fmt.Errorf("%w: chunk %d of version %d would buffer %d bytes, over %d (snapshot.max_bytes); the version is dropped",
			ErrTooLarge, c.index, c.version, n, a.limit)
	}
	if a.chunks[c.index] == nil {
		a.have++
	}
	a.chunks[c.index], a.bytes = c.data, n
	a.crcs[c.index] = chunkCRC(r.Value)
	return nil, nil, nil
}

// findStart returns the offset of the newest full snapshot that the newest
// manifest near the end of the topic names, or the topic's start.
func findStart(ctx context.Context, opts SubscriberOptions) (int64, error) {
	m, so, err := newest(ctx, opts)
	if err != nil {
		return so, err
	}
	start := so
	if m != nil && m.FullOffset >= so {
		start = m.FullOffset
		logf(opts.Logf, "snapshot: newest full snapshot starts at offset %d of %s", start, opts.Topic)
	}
	if f := opts.From; f != nil && *f < start {
		if *f < so {
			logf(opts.Logf, "snapshot: offset %d of %s is no longer on the topic (it starts at %d)", *f, opts.Topic, so)
			return start, nil
		}
		logf(opts.Logf, "snapshot: reading %s from offset %d, to rebuild the version a rollback holds", opts.Topic, *f)
		start = *f
	}
	return start, nil
}

// NewestManifest returns the newest authentic manifest of opts.ModelID
// among the last records of the topic, or nil when there is none: what
// the previous leader published last (its offsets, its version).
func NewestManifest(ctx context.Context, opts SubscriberOptions) (*Manifest, error) {
	m, _, err := newest(ctx, opts)
	return m, err
}

// newest reads the last probeWindow records of the topic and returns its
// newest authentic manifest (nil if none) and the topic's start offset.
func newest(ctx context.Context, opts SubscriberOptions) (*Manifest, int64, error) {
	cl, err := kgo.NewClient(opts.Client.Opts()...)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot create snapshot client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, opts.Topic)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list start offsets of %q: %w", opts.Topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, opts.Topic)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot list end offsets of %q: %w", opts.Topic, err)
	}
	so, _ := starts.Lookup(opts.Topic, 0)
	eo, _ := ends.Lookup(opts.Topic, 0)
	if so.Err != nil || eo.Err != nil {
		return nil, 0, fmt.Errorf("cannot find partition 0 of %q: %v %v", opts.Topic, so.Err, eo.Err)
	}
	if eo.Offset <= so.Offset {
		return nil, so.Offset, nil
	}
	m, err := probe(ctx, opts, max(so.Offset, eo.Offset-probeWindow), eo.Offset)
	return m, so.Offset, err
}

// probe reads [from, end) and returns the last authentic manifest of the
// model, or nil.
func probe(ctx context.Context, opts SubscriberOptions, from, end int64) (*Manifest, error) {
	cl, err := kgo.NewClient(append(opts.Client.Opts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{opts.Topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create snapshot consumer: %w", err)
	}
	defer cl.Close()
	var found *Manifest
	for ctx.Err() == nil {
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollFetches(pollCtx)
		cancel()
		n, last := 0, int64(-1)
		fetches.EachRecord(func(r *kgo.Record) {
			n, last = n+1, r.Offset
			var m Manifest
			if string(r.Key) == manifestKey && verify(opts.Key, r) == nil && json.Unmarshal(r.Value, &m) == nil &&
				(opts.ModelID == "" || m.ModelID == opts.ModelID) {
				found = &m
			}
		})
		if n == 0 || last+2 >= end {
			break
		}
	}
	return found, nil
}

func logf(f func(string, ...any), format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}
