package ingest

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Event outcomes. Every consumed event ends in exactly one of them, or is
// still pending in an open window. Pending impressions also move in and out
// of a process with their partition (restored, released), so per process:
//
//	consumed + restored = example + joined + duplicate + sampled_out + dead_letter + repartitioned + released + pending
//
// A repartitioned event is consumed twice: once where it was produced
// (outcome repartitioned) and once from the repartition topic (its real
// outcome).
const (
	outcomeExample       = iota // the event produced an example
	outcomeJoined               // merged into an example another event produced
	outcomeDuplicate            // same event_id (or impression) seen before
	outcomeSampledOut           // unengaged impression dropped by negative_keep_rate
	outcomeDeadLetter           // written to the dead-letter topic
	outcomeRepartitioned        // routed to the partition of its key through the repartition topic
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"example", "joined", "duplicate", "sampled_out", "dead_letter", "repartitioned"}

// tally counts what one partition's share of the open transaction did. Each
// partition is processed by one goroutine, so tallies need no locks.
type tally struct {
	consumed     int64
	outcomes     [numOutcomes]int64
	reasons      map[string]int64
	pendingDelta int64
	tasks        map[string]*taskTally
	// Bounds of memory: items not added to a full negative-sampling pool,
	// event ids forgotten before their hour to keep the dedupe set bounded.
	poolDropped, dedupeForgotten int64
}

// taskTally counts the examples and stratification decisions of one task.
type taskTally struct {
	positive, negative int64 // examples emitted, by label
	kept, sampledOut   int64 // unengaged impressions kept / dropped by negative_keep_rate
	sampledNegatives   int64 // negatives drawn for engagement-only canvases
}

func newTally() *tally {
	return &tally{reasons: map[string]int64{}, tasks: map[string]*taskTally{}}
}

func (t *tally) task(name string) *taskTally {
	tt := t.tasks[name]
	if tt == nil {
		tt = &taskTally{}
		t.tasks[name] = tt
	}
	return tt
}

func (t *tally) deadLetter(reason string) {
	t.outcomes[outcomeDeadLetter]++
	t.reasons[reason]++
}

func (t *tally) reset() {
	t.consumed, t.pendingDelta, t.poolDropped, t.dedupeForgotten = 0, 0, 0, 0
	t.outcomes = [numOutcomes]int64{}
	clear(t.reasons)
	for _, tt := range t.tasks {
		*tt = taskTally{}
	}
}

// accounting publishes the tallies of a batch to the metrics only when the
// batch's transaction commits, so the counters match what is durably in
// Kafka.
type accounting struct {
	set       *metrics.Set
	consumedC *metrics.Counter
	pendingG  *metrics.Gauge
	// restored counts pending impressions read back from the changelog;
	// released those dropped with a partition that moved away or with the
	// state of an aborted transaction (to be restored again).
	restored, released *metrics.Counter
}

// Per-task metric names.
const (
	metricExamples       = "unirec_ingest_examples_total{task=%q,label=%q}"
	metricStratification = "unirec_ingest_stratification_total{task=%q,decision=%q}"
	metricSampledNeg     = "unirec_ingest_sampled_negatives_total{task=%q}"
)

// Counters of the memory bounds.
const (
	metricPoolDropped     = "unirec_ingest_pool_items_dropped_total"
	metricDedupeForgotten = "unirec_ingest_dedupe_ids_forgotten_total"
)

func newAccounting(set *metrics.Set, tasks []string) *accounting {
	if set == nil {
		set = metrics.NewSet()
	}
	a := &accounting{set: set}
	a.consumedC = set.GetOrCreateCounter("unirec_ingest_events_consumed_total")
	a.pendingG = set.GetOrCreateGauge("unirec_ingest_pending_impressions", nil)
	a.restored = set.GetOrCreateCounter("unirec_ingest_pending_restored_total")
	a.released = set.GetOrCreateCounter("unirec_ingest_pending_released_total")
	for _, o := range outcomeNames {
		set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o))
	}
	for _, r := range Reasons {
		set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_dead_letters_total{reason=%q}", r))
	}
	set.GetOrCreateCounter(metricPoolDropped)
	set.GetOrCreateCounter(metricDedupeForgotten)
	for _, t := range tasks {
		for _, l := range []string{"positive", "negative"} {
			set.GetOrCreateCounter(fmt.Sprintf(metricExamples, t, l))
		}
		for _, d := range []string{"kept", "sampled_out"} {
			set.GetOrCreateCounter(fmt.Sprintf(metricStratification, t, d))
		}
		set.GetOrCreateCounter(fmt.Sprintf(metricSampledNeg, t))
	}
	return a
}

// commit publishes the counts of a committed batch and resets them.
func (a *accounting) commit(tallies []*tally) {
	for _, t := range tallies {
		a.consumedC.Add(int(t.consumed))
		for o, n := range t.outcomes {
			if n > 0 {
				a.set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", outcomeNames[o])).Add(int(n))
			}
		}
		a.add(metricPoolDropped, t.poolDropped)
		a.add(metricDedupeForgotten, t.dedupeForgotten)
		for r, n := range t.reasons {
			a.add(fmt.Sprintf("unirec_ingest_dead_letters_total{reason=%q}", r), n)
		}
		for task, tt := range t.tasks {
			a.add(fmt.Sprintf(metricExamples, task, "positive"), tt.positive)
			a.add(fmt.Sprintf(metricExamples, task, "negative"), tt.negative)
			a.add(fmt.Sprintf(metricStratification, task, "kept"), tt.kept)
			a.add(fmt.Sprintf(metricStratification, task, "sampled_out"), tt.sampledOut)
			a.add(fmt.Sprintf(metricSampledNeg, task), tt.sampledNegatives)
		}
		t.reset()
	}
}

func (a *accounting) add(name string, n int64) {
	if n > 0 {
		a.set.GetOrCreateCounter(name).Add(int(n))
	}
}

func (a *accounting) setPending(n int) { a.pendingG.Set(float64(n)) }
