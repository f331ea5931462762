package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/online"
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
	// Interval between snapshots; a snapshot is skipped when the model has
	// not learned anything since the previous one.
	Interval  time.Duration
	ChunkSize int
	Metrics   *metrics.Set
	Logf      func(format string, args ...any)
	Now       func() time.Time
}

// Publisher periodically captures the trainer's model and publishes it.
type Publisher struct {
	opts        PublisherOptions
	trainer     *online.Trainer
	cl          *kgo.Client
	lastApplied int64

	versionG, bytesG, rowsG *metrics.Gauge
	publishH                *metrics.PrometheusHistogram
}

// NewPublisher connects a transactional producer for the snapshots topic.
func NewPublisher(opts PublisherOptions, t *online.Trainer) (*Publisher, error) {
	if opts.ChunkSize <= 0 {
		opts.ChunkSize = stream.MaxRecordBytes
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.NewSet()
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
		opts: opts, trainer: t, cl: cl, lastApplied: -1,
		versionG: opts.Metrics.GetOrCreateGauge("unirec_snapshot_version", nil),
		bytesG:   opts.Metrics.GetOrCreateGauge("unirec_snapshot_bytes", nil),
		rowsG:    opts.Metrics.GetOrCreateGauge("unirec_snapshot_rows", nil),
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

// PublishIfChanged publishes a full snapshot if the model learned since the
// last one. It returns the manifest, or nil when nothing was published.
func (p *Publisher) PublishIfChanged(ctx context.Context) (*Manifest, error) {
	if p.trainer.Applied() == p.lastApplied {
		return nil, nil
	}
	return p.Publish(ctx)
}

// Publish captures the model and publishes it as one transaction: chunks,
// then the manifest.
func (p *Publisher) Publish(ctx context.Context) (*Manifest, error) {
	start := time.Now()
	c, err := p.trainer.Capture()
	if err != nil {
		return nil, fmt.Errorf("cannot capture model: %w", err)
	}
	payload, err := encodePayload(c)
	if err != nil {
		return nil, err
	}
	chunks := encodeChunks(c.Version, payload, p.opts.ChunkSize)
	m := &Manifest{
		ModelID: p.opts.ModelID, Version: c.Version, Kind: KindFull, Config: c.Config,
		Offsets: c.Offsets, Watermark: unixMilli(c.Watermark), Applied: c.Applied,
		Rows: len(c.IDs), Items: len(c.Items), Chunks: len(chunks), Bytes: len(payload),
		Checksum: checksum(payload), Created: p.opts.Now().UTC(), Progress: c.Progress,
	}
	if err := p.produce(ctx, m, chunks); err != nil {
		return nil, err
	}
	p.lastApplied = c.Applied
	p.versionG.Set(float64(m.Version))
	p.bytesG.Set(float64(m.Bytes))
	p.rowsG.Set(float64(m.Rows))
	p.publishH.UpdateDuration(start)
	return m, nil
}

// manifestKey marks the record that ends a snapshot.
const manifestKey = "manifest"

func (p *Publisher) produce(ctx context.Context, m *Manifest, chunks [][]byte) error {
	mb, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode manifest: %w", err)
	}
	if err := p.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("cannot begin snapshot transaction: %w", err)
	}
	recs := make([]*kgo.Record, 0, len(chunks)+1)
	for i, c := range chunks {
		recs = append(recs, &kgo.Record{Key: []byte("chunk/" + strconv.Itoa(i)), Value: c})
	}
	recs = append(recs, &kgo.Record{Key: []byte(manifestKey), Value: mb})
	perr := p.cl.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TransactionEndTry(perr == nil)
	if err := p.cl.EndTransaction(ctx, commit); err != nil {
		return fmt.Errorf("cannot end snapshot transaction of version %d: %w", m.Version, err)
	}
	if perr != nil {
		return fmt.Errorf("cannot produce snapshot version %d: %w", m.Version, perr)
	}
	return nil
}
