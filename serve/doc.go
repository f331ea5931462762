// Package serve owns the serving replica: it builds the model versions
// that snapshots deliver aside (deltas copy on write) and swaps them in
// atomically once they pass sanity checks, keeps the versions its use
// cases' freshness policies hold and recent ones for rollback, answers the
// canvas-agnostic recommend API for every configured use case with that
// use case's policy and environment (timeout, parallelism, cache,
// candidates, business rules), ranks the catalog by exact dot-product
// top-k with an AVX2 kernel, falls back along the use case's chain
// (popularity, a static list) when no model may answer in time, and sheds
// load it cannot take instead of queueing it.
//
// It never trains: the model it serves is exactly the snapshots it applied.
// It never blocks a request on a model swap, a follower or another
// request's ranking.
package serve
