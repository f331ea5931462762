// Package ingest turns raw interaction events from every canvas into unified
// labeled examples: it validates events (bad ones become dead letters with
// their reason, never silent drops), normalizes each into the unified request
// context, joins impressions with later engagements in event time, applies
// per-canvas stratification, and emits examples.
//
// It runs as a stream.Stage inside an exactly-once Kafka transaction loop:
// join state changes are written to a changelog topic in the same
// transaction as the examples and the consumed offsets. It never trains or
// serves anything.
package ingest
