// Package serve owns the serving replica: it builds the model versions
// that snapshots deliver aside (deltas copy on write) and swaps them in
// atomically once they pass sanity checks, keeps the versions its use
// cases' freshness policies hold and recent ones for rollback, answers the
// canvas-agnostic recommend API for every configured use case with that
// use case's policy, ranks the catalog by exact dot-product top-k, and
// falls back (popularity or a static list) when no model may answer.
//
// It never trains: the model it serves is exactly the snapshots it applied.
package serve
