// Package online owns the shared multi-task model and its incremental
// trainer: featurization of the unified context and of items, the
// factorized dot-product model with task-conditioned context, sparse AdaGrad
// updates, progressive validation, and the Pebble parameter store that keeps
// parameters and consumed offsets committed together.
//
// Serving uses the same featurization and scoring functions, so a context is
// scored identically in training and serving. The package never publishes
// snapshots or answers requests.
package online
