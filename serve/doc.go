// Package serve owns the serving replica: it holds the model versions that
// snapshots deliver, answers the canvas-agnostic recommend API for every
// configured use case with that use case's policy, ranks the catalog by
// exact dot-product top-k, and falls back to popularity when no model can
// answer.
//
// It never trains: the model it serves is exactly the snapshot it applied.
package serve
