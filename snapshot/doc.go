// Package snapshot distributes the model from the trainer to serving: it
// encodes a trainer Capture into checksummed chunks, publishes each snapshot
// inside one Kafka transaction (a reader of committed data never sees a
// partial snapshot), and subscribes to the snapshots topic to hand complete,
// verified snapshots to a replica.
//
// It never changes the model: what it decodes is exactly what was captured.
package snapshot
