// Package load is the serving load benchmark: an open-loop generator that
// sends recommend requests at a fixed rate from its own process and
// measures latency percentiles, errors and fallbacks per use case; a
// synthetic model of any catalog size (and its deltas) for a replica to
// serve; and the scoring kernel's speed against the machine's memory
// bandwidth, measured in the same run.
//
// It talks to a replica only through the HTTP API (serve/client); it
// never reaches into one.
package load
