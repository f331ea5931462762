package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// Control is an operator command published on the snapshots topic; every
// subscribed replica carries it out. Its signature covers the model id and
// the creation time, so a replica refuses a record of another model, one
// older than its max age or one not newer than the last it obeyed: a
// signed record cannot be replayed.
type Control struct {
	// Action is ActionRollback (serve Version and hold it) or ActionResume
	// (serve the newest version again).
	Action  string    `json:"action"`
	Version int64     `json:"version,omitempty"`
	ModelID string    `json:"model_id"`
	Created time.Time `json:"created"`
}

// The control actions.
const (
	ActionRollback = "rollback"
	ActionResume   = "resume"
)

// Validate checks a control command.
func (c Control) Validate() error {
	switch {
	case c.Action == ActionRollback && c.Version <= 0:
		return fmt.Errorf("rollback needs a version > 0, got %d", c.Version)
	case c.Action != ActionRollback && c.Action != ActionResume:
		return fmt.Errorf("unknown control action %q (want %q or %q)", c.Action, ActionRollback, ActionResume)
	case c.Created.IsZero():
		return fmt.Errorf("control record needs its creation time")
	}
	return nil
}

// PublishControl writes one control record, signed with key when set, to
// the snapshots topic.
func PublishControl(ctx context.Context, copts stream.ClientOptions, topic string, key []byte, c Control) error {
	if err := c.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("cannot encode control record: %w", err)
	}
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	rec := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(controlKey), Value: b}
	sign(key, rec)
	if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("cannot produce control record to %q: %w", topic, err)
	}
	return nil
}
