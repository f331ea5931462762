// Package model owns the scoring math of the shared multi-task model that
// the trainer (package online) and the serving replicas (package serve)
// both use, so a context is scored identically in training and serving:
// the model configuration, hashed featurization of contexts and items,
// task adapters, context and item vectors, the logit, and the consistent
// model copy (Capture) that snapshots carry.
//
// It holds no state and does no I/O: it must never import the trainer, the
// parameter store (Pebble) or Kafka, so a replica can use it alone.
package model
