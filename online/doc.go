// Package online owns the incremental trainer of the shared multi-task
// model: sparse AdaGrad updates, admission and expiry, progressive
// validation, and the Pebble parameter store that keeps parameters and
// consumed offsets committed together.
//
// The scoring math (featurization, context and item vectors, the logit)
// lives in online/model, which serving uses alone, so a context is scored
// identically in training and serving. The package never publishes
// snapshots or answers requests.
package online
