// Package bench holds the end-to-end benchmarks of unirec and, in its
// subpackages, their inputs: a synthetic world with a planted truth
// (bench/synth) and real logs replayed as events (bench/datasets). Its
// benchmarks report ratios against baselines measured in the same run and
// never gate a test on wall-clock time.
package bench
