// Package bench is unirec's harness to size, tune and prove the system: it
// produces synthetic events and replays real logs into the events topic at
// a fixed rate or as fast as possible, evaluates ranking quality on the
// future of a global timeline, and writes every run's figures as a report
// directory (report.md, report.json, SVG plots).
//
// It drives the system only through its public surfaces (Kafka topics and
// the HTTP API); it never reaches into a stage's internals. Its
// subpackages measure one part each (throughput: a stage's library on the
// embedded broker; freshness: the whole pipeline in one process; load: a
// replica over HTTP), always next to a baseline measured in the same run.
package bench
