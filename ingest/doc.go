// Package ingest turns raw interaction events from every canvas into unified
// labeled examples: it decodes and validates events (bad ones become dead
// letters with their reason, never silent drops), drops duplicates,
// normalizes each into the unified request context, joins impressions with
// later engagements in event time, samples negatives for engagement-only
// canvases, applies per-canvas stratification, attaches catalog metadata,
// and emits examples.
//
// It runs as a stream.Stage inside an exactly-once Kafka transaction loop:
// join state changes (pending impressions, watermark, recent event ids,
// engaged-item counts) are written to a changelog topic in the same
// transaction as the examples and the consumed offsets. It never trains or
// serves anything.
package ingest
