package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/unirec/unirec/snapshot"
)

const snapshotUsage = `Usage:
  unirec snapshot list [--json] [flags]   every snapshot and control record on the snapshots topic, checked
  unirec snapshot rollback --to VERSION   every replica serves VERSION and holds it
  unirec snapshot resume                  every replica serves the newest version again
`

// cmdSnapshot lists the snapshots topic or publishes an operator command
// (rollback, resume) on it.
func cmdSnapshot(ctx context.Context, args []string) error {
	sub, err := subcommand(args, snapshotUsage, "list", snapshot.ActionRollback, snapshot.ActionResume)
	if err != nil {
		return err
	}
	if sub == "list" {
		return listSnapshots(ctx, args[1:], os.Stdout)
	}
	return publishControl(ctx, sub, args[1:])
}

// publishControl publishes a control record, signed with the snapshot
// HMAC key (unsigned only with snapshot.insecure), so every replica
// carries it out.
func publishControl(ctx context.Context, action string, args []string) error {
	f := newFlags("snapshot " + action)
	to := f.fs.Int64("to", 0, "version to roll back to (rollback)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	key := cfg.Secrets.SnapshotKey
	c := snapshot.Control{Action: action, Version: *to, ModelID: cfg.Snapshot.ModelID, Created: time.Now().UTC()}
	if action == snapshot.ActionResume {
		c.Version = 0
	}
	if err := snapshot.PublishControl(ctx, cfg.Kafka, cfg.Topics.Snapshots, key, c); err != nil {
		return err
	}
	what := "resume (serve the newest good version)"
	if action != snapshot.ActionResume {
		what = fmt.Sprintf("%s to version %d", action, c.Version)
	}
	log.Printf("snapshot: published %s to %s", what, cfg.Topics.Snapshots)
	return nil
}

// listSnapshots prints every snapshot and control record of the topic,
// with its signature checked against the configured key.
func listSnapshots(ctx context.Context, args []string, w io.Writer) error {
	f := newFlags("snapshot list")
	asJSON := f.fs.Bool("json", false, "print the entries as a JSON array")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	key := cfg.Secrets.SnapshotKey
	entries, err := snapshot.List(ctx, snapshot.ListOptions{Client: cfg.Kafka, Topic: cfg.Topics.Snapshots, Key: key, ModelID: cfg.Snapshot.ModelID, MaxBytes: cfg.Snapshot.MaxBytes})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	if key == nil {
		fmt.Fprintln(w, "snapshot.insecure is true and no key is configured: signatures are not checked")
	}
	return snapshot.WriteTable(w, entries)
}
