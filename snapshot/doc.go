// Package snapshot distributes the model from the trainer to serving: it
// publishes full snapshots and, between them, deltas of the rows that
// changed, each encoded into checksummed chunks and a signed manifest
// inside one Kafka transaction (a reader of committed data never sees a
// partial snapshot); it subscribes to the snapshots topic, seeks to the
// newest full snapshot, and hands complete, verified snapshots to a
// replica in chain order, skipping to the next full after a gap.
//
// It never changes the model beyond the chosen row encoding: a chain of a
// full snapshot and its deltas decodes to exactly what a full snapshot of
// the last version would.
package snapshot
