package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online/model"
	"github.com/unirec/unirec/stream"
)

// PublisherOptions configures a Publisher.
type PublisherOptions struct {
	Client stream.ClientOptions
	Topic  string
	// TransactionalID fences publishers: a newer publisher with the same id
	// makes an older one's transactions fail.
	TransactionalID string
	ModelID         string
	// Interval between snapshots (deltas); a snapshot is skipped when the
	// model has not learned anything since the previous one.
	Interval time.Duration
	// FullInterval is the time between full snapshots; the snapshots in
	// between are deltas. The first snapshot of a publisher is always full.
	FullInterval time.Duration
	// Encoding of the row weights.
	Encoding  Encoding
	ChunkSize int
	// Key signs every manifest with HMAC-SHA256 when set.
	Key     []byte
	Metrics *metrics.Set
	Logf    func(format string, args ...any)
	Now     func() time.Time
	// OnPublish, when set, is called after every committed snapshot with
	// the time its capture (for a full written after its delta: its own
	// encoding) and transaction took (benchmarks).
	OnPublish func(m *Manifest, took time.Duration)
}

// Source is what a publisher captures: the trainer (online.Trainer). It is
// the seam that keeps the trainer and its parameter store out of every
// program that only subscribes.
type Source interface {
	// Applied is how many examples the model has learned, ever.
	Applied() int64
	// Capture commits and returns a consistent copy of the model.
	Capture() (*model.Capture, error)
}

// Publisher periodically captures the trainer's model and publishes a full
// snapshot or the delta since the previous snapshot.
type Publisher struct {
	opts        PublisherOptions
	trainer     Source
	cl          *kgo.Client
	lastApplied int64

	prev       *model.Capture // the last published model
	lastFull   time.Time
	fullVer    int64
	fullOffset int64
	fullBytes  int // size of the last full snapshot
	deltaBytes int // sum of the deltas' sizes since

	versionG *metrics.Gauge
	publishH *metrics.PrometheusHistogram
}

func (o *PublisherOptions) ensureDefaults() {
	if o.ChunkSize <= 0 {
		o.ChunkSize = stream.MaxRecordBytes
	}
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.FullInterval <= 0 {
		o.FullInterval = 5 * time.Minute
	}
	if o.Encoding == "" {
		o.Encoding = EncodingFloat32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = metrics.NewSet()
	}
}

// NewPublisher connects a transactional producer for the snapshots topic.
func NewPublisher(opts PublisherOptions, t Source) (*Publisher, error) {
	opts.ensureDefaults()
	if err := opts.Encoding.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts.Client.Opts(),
		kgo.TransactionalID(opts.TransactionalID),
		kgo.DefaultProduceTopic(opts.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("cannot create snapshot producer: %w", err)
	}
	return &Publisher{
		opts: opts, trainer: t, cl: cl, lastApplied: -1, fullOffset: -1,
		versionG: opts.Metrics.GetOrCreateGauge("unirec_snapshot_version", nil),
		publishH: opts.Metrics.GetOrCreatePrometheusHistogram("unirec_snapshot_publish_seconds"),
	}, nil
}

// Close closes the producer.
func (p *Publisher) Close() { p.cl.Close() }

// Run publishes a snapshot every Interval until ctx ends.
func (p *Publisher) Run(ctx context.Context) error {
	tick := time.NewTicker(p.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if _, err := p.PublishIfChanged(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// PublishIfChanged publishes a snapshot if the model learned since the
// last one. It returns the manifest, or nil when nothing was published.
func (p *Publisher) PublishIfChanged(ctx context.Context) (*Manifest, error) {
	if p.trainer.Applied() == p.lastApplied {
		return nil, nil
	}
	return p.Publish(ctx)
}

// Publish captures the model and publishes the delta since the previous
// snapshot, each snapshot as one transaction (chunks, then the manifest).
// When a full snapshot is due (FullInterval has passed since the last one,
// or the deltas since then add up to more bytes than it, so that a cold
// replica never reads more than about twice a full snapshot), it then
// publishes the same version again in full: replicas that follow already
// serve it from the delta and skip it, cold ones start from it, and the
// full's larger encoding never delays what the delta brings. The first
// snapshot of a publisher is a full one only. It returns the last
// manifest written.
func (p *Publisher) Publish(ctx context.Context) (*Manifest, error) {
	start := time.Now()
	c, err := p.capture()
	if err != nil {
		return nil, err
	}
	if p.prev == nil {
		return p.write(ctx, c, true, start)
	}
	due := p.opts.Now().Sub(p.lastFull) >= p.opts.FullInterval || p.deltaBytes >= p.fullBytes
	m, err := p.write(ctx, c, false, start)
	if err != nil || !due {
		return m, err
	}
	return p.write(ctx, c, true, time.Now())
}

// PublishFull publishes a full snapshot of a new capture now.
func (p *Publisher) PublishFull(ctx context.Context) (*Manifest, error) {
	start := time.Now()
	c, err := p.capture()
	if err != nil {
		return nil, err
	}
	return p.write(ctx, c, true, start)
}

func (p *Publisher) capture() (*model.Capture, error) {
	c, err := p.trainer.Capture()
	if err != nil {
		return nil, fmt.Errorf("cannot capture model: %w", err)
	}
	return c, nil
}

// write publishes c in full or as the delta from the previous snapshot;
// start is when its work began.
func (p *Publisher) write(ctx context.Context, c *model.Capture, full bool, start time.Time) (*Manifest, error) {
	m := &Manifest{
		ModelID: p.opts.ModelID, Version: c.Version, Kind: KindFull, FullVersion: c.Version, FullOffset: -1,
		Encoding: p.opts.Encoding, Config: c.Config, Offsets: c.Offsets, Watermark: unixMilli(c.Watermark),
		Applied: c.Applied, TotalRows: len(c.IDs), Created: p.opts.Now().UTC(), Progress: c.Progress,
	}
	var base *model.Capture
	if !full {
		base = p.prev
		m.Kind, m.BaseVersion, m.FullVersion, m.FullOffset = KindDelta, p.prev.Version, p.fullVer, p.fullOffset
	}
	d := Diff(base, c)
	m.Rows, m.Deleted, m.Tasks, m.Items, m.Memory = len(d.IDs), len(d.Deleted), len(d.Tasks), len(d.Items), len(d.Memory)
	payload, err := encodePayload(d, p.opts.Encoding)
	if err != nil {
		return nil, err
	}
	chunks := encodeChunks(c.Version, payload, p.opts.ChunkSize)
	m.Chunks, m.Bytes, m.Checksum = len(chunks), len(payload), checksum(payload)
	for _, ch := range chunks {
		m.ChunkCRCs = append(m.ChunkCRCs, chunkCRC(ch))
	}
	if err := p.produce(ctx, m, chunks); err != nil {
		return nil, err
	}
	p.prev, p.lastApplied = c, c.Applied
	if full {
		p.lastFull, p.fullVer, p.fullOffset, p.fullBytes, p.deltaBytes = p.opts.Now(), m.Version, m.FullOffset, m.Bytes, 0
	} else {
		p.deltaBytes += m.Bytes
	}
	p.versionG.Set(float64(m.Version))
	p.opts.Metrics.GetOrCreateGauge(fmt.Sprintf("unirec_snapshot_bytes{kind=%q}", m.Kind), nil).Set(float64(m.Bytes))
	p.opts.Metrics.GetOrCreateGauge(fmt.Sprintf("unirec_snapshot_rows{kind=%q}", m.Kind), nil).Set(float64(m.Rows))
	p.publishH.UpdateDuration(start)
	if p.opts.OnPublish != nil {
		p.opts.OnPublish(m, time.Since(start))
	}
	return m, nil
}

// Record keys on the snapshots topic.
const (
	manifestKey = "manifest"
	controlKey  = "control"
)

// produce writes chunks and manifest in one transaction. A full snapshot's
// manifest records the offset of its first chunk.
func (p *Publisher) produce(ctx context.Context, m *Manifest, chunks [][]byte) error {
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("cannot begin snapshot transaction: %w", err)
	}
	perr := p.produceRecords(ctx, m, chunks)
	commit := kgo.TransactionEndTry(perr == nil)
	if err := p.cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("cannot end snapshot transaction of version %d: %w", m.Version, err)
	}
	if perr != nil {
		return fmt.Errorf("cannot produce snapshot version %d: %w", m.Version, perr)
	}
	return nil
}

func (p *Publisher) produceRecords(ctx context.Context, m *Manifest, chunks [][]byte) error {
	recs := make([]*kgo.Record, 0, len(chunks))
	for i, c := range chunks {
		recs = append(recs, &kgo.Record{Key: []byte("chunk/" + strconv.Itoa(i)), Value: c})
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	if m.Kind == KindFull {
		m.FullOffset = recs[0].Offset
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode manifest: %w", err)
	}
	rec := &kgo.Record{Key: []byte(manifestKey), Value: mb}
	sign(p.opts.Key, rec)
	return p.cl.ProduceSync(ctx, rec).FirstErr()
}
