package main

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/unirec/unirec/snapshot"
)

// cmdSnapshot publishes an operator command (rollback, resume) on the
// snapshots topic, signed with the snapshot HMAC key when one is set, so
// every replica carries it out.
func cmdSnapshot(ctx context.Context, args []string) error {
	if len(args) == 0 || (args[0] != snapshot.ActionRollback && args[0] != snapshot.ActionResume) {
		return fmt.Errorf("usage: unirec snapshot rollback --to VERSION | unirec snapshot resume [flags]")
	}
	action := args[0]
	f := newFlags("snapshot " + action)
	to := f.fs.Int64("to", 0, "version to roll back to (rollback)")
	cfg, err := f.load(args[1:])
	if err != nil {
		return err
	}
	key, err := cfg.Snapshot.Key()
	if err != nil {
		return err
	}
	c := snapshot.Control{Action: action, Version: *to, Created: time.Now().UTC()}
	if action == snapshot.ActionResume {
		c.Version = 0
	}
	if err := snapshot.PublishControl(ctx, cfg.Kafka, cfg.Topics.Snapshots, key, c); err != nil {
		return err
	}
	log.Printf("snapshot: published %s %d to %s", action, c.Version, cfg.Topics.Snapshots)
	return nil
}
