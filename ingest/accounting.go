package ingest

import (
	"fmt"

	"github.com/VictoriaMetrics/metrics"
)

// Event outcomes. Every consumed event ends in exactly one of them, or is
// still pending in an open window:
//
//	consumed = example + joined + duplicate + sampled_out + dead_letter + pending
const (
	outcomeExample    = "example"     // the event produced an example
	outcomeJoined     = "joined"      // merged into an example another event produced
	outcomeDuplicate  = "duplicate"   // same event_id (or impression) seen before
	outcomeSampledOut = "sampled_out" // unengaged impression dropped by negative_keep_rate
	outcomeDeadLetter = "dead_letter" // written to the dead-letter topic
)

var outcomes = []string{outcomeExample, outcomeJoined, outcomeDuplicate, outcomeSampledOut, outcomeDeadLetter}

// accounting counts a batch's outcomes and publishes them to the metrics
// only when the batch's transaction commits, so the counters match what is
// durably in Kafka.
type accounting struct {
	set *metrics.Set

	consumed     int64
	outcomes     map[string]int64
	reasons      map[string]int64
	examples     map[string]int64 // task|label
	pendingDelta int64

	consumedC *metrics.Counter
	pendingG  *metrics.Gauge
}

func newAccounting(set *metrics.Set, tasks []string) *accounting {
	if set == nil {
		set = metrics.NewSet()
	}
	a := &accounting{set: set, outcomes: map[string]int64{}, reasons: map[string]int64{}, examples: map[string]int64{}}
	a.consumedC = set.GetOrCreateCounter("unirec_ingest_events_consumed_total")
	a.pendingG = set.GetOrCreateGauge("unirec_ingest_pending_impressions", nil)
	for _, o := range outcomes {
		set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o))
	}
	for _, r := range Reasons {
		set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_dead_letters_total{reason=%q}", r))
	}
	for _, t := range tasks {
		for _, l := range []string{"positive", "negative"} {
			set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_examples_total{task=%q,label=%q}", t, l))
		}
	}
	return a
}

func (a *accounting) outcome(o string) { a.outcomes[o]++ }

func (a *accounting) deadLetter(reason string) {
	a.outcomes[outcomeDeadLetter]++
	a.reasons[reason]++
}

func (a *accounting) example(task string, positive bool) {
	a.outcomes[outcomeExample]++
	label := "negative"
	if positive {
		label = "positive"
	}
	a.examples[task+"|"+label]++
}

// commit publishes the batch's counts.
func (a *accounting) commit() {
	a.consumedC.Add(int(a.consumed))
	for o, n := range a.outcomes {
		a.set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o)).Add(int(n))
	}
	for r, n := range a.reasons {
		a.set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_dead_letters_total{reason=%q}", r)).Add(int(n))
	}
	for k, n := range a.examples {
		var task, label string
		for i := len(k) - 1; i >= 0; i-- {
			if k[i] == '|' {
				task, label = k[:i], k[i+1:]
				break
			}
		}
		a.set.GetOrCreateCounter(fmt.Sprintf("unirec_ingest_examples_total{task=%q,label=%q}", task, label)).Add(int(n))
	}
	a.rollback()
}

// rollback forgets the batch's counts (its transaction aborted).
func (a *accounting) rollback() {
	a.consumed, a.pendingDelta = 0, 0
	clear(a.outcomes)
	clear(a.reasons)
	clear(a.examples)
}

func (a *accounting) setPending(n int) { a.pendingG.Set(float64(n)) }
