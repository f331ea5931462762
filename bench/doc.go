// Package bench holds the benchmarks of whole pipeline stages on the
// embedded broker (go test -bench ./bench); each reports its figures next to
// a baseline measured in the same run. Subpackages generate their input:
// synth is a synthetic world with a planted truth. Nothing here is used by
// the production binary except through those subpackages.
package bench
