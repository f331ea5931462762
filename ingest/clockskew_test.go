package ingest_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/stream"
)

// send is one event the clock-skew property test sent: what it was and
// the wall clock when it was sent.
type send struct {
	id, value string
	part      int32
	at, now   time.Time
	resent    bool // a copy of an earlier send
	dead      bool // dead-lettered
}

// Event times far in the past and the future (to years ahead, around the
// skew's edge, exactly on it) against an injected wall clock that moves
// forward and, one batch in ten, steps back up to five minutes (an NTP
// correction): every event sent is accounted for exactly once (an example, a
// counted duplicate, a pending impression, or a dead letter whose reason
// is future exactly when it is beyond clock + max_future_skew, and late
// only when older than its partition's watermark minus the lateness), the
// counters balance, and no watermark - a partition's, or the newest event
// time of the examples, which is the trainer's and so the replica's -
// ever passes the latest wall clock reading + skew.
func TestClockSkewIsAccountedAndBounded(t *testing.T) {
	const skew, lateness = 2 * time.Minute, 5 * time.Second
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			s := newStage(t, nil, func(o *ingest.Options) { o.MaxFutureSkew = skew })
			rng := rand.New(rand.NewPCG(seed, 13))
			var sends []send
			accepted := map[string]bool{}      // ids of sends that were not dead-lettered or duplicates
			watermark := map[int32]time.Time{} // the oracle's: newest accepted event time per partition
			var examplesMax time.Time          // the trainer's watermark: newest example event time
			var outcomes = map[string]int{}    // what the sends became
			latest := s.now                    // the latest wall clock reading: the clock also steps back
			for b := range 40 {
				if rng.IntN(10) == 0 { // an NTP correction: up to five minutes back
					s.now = s.now.Add(-time.Duration(rng.IntN(300_000)) * time.Millisecond)
				} else {
					s.now = s.now.Add(time.Duration(rng.IntN(60_000)) * time.Millisecond)
				}
				if s.now.After(latest) {
					latest = s.now
				}
				var batch []any
				var these []int
				byValue := map[string][]int{} // the sends of this batch by value, in order
				for i := range 25 {
					sd := send{part: int32(rng.IntN(2)), now: s.now, id: fmt.Sprintf("e%d-%d-%d", seed, b, i)}
					switch r := rng.Float64(); {
					case r < 0.1 && len(sends) > 0:
						sd = sends[rng.IntN(len(sends))]
						sd.now, sd.resent, sd.dead = s.now, true, false
					case r < 0.6:
						sd.at = s.now.Add(time.Duration(rng.IntN(8000)-4000) * time.Millisecond)
					case r < 0.75:
						sd.at = s.now.Add(-time.Duration(10_000+rng.IntN(7_200_000)) * time.Millisecond)
					case r < 0.78:
						sd.at = s.now.Add(skew + time.Duration(rng.IntN(4000)-2000)*time.Millisecond)
					case r < 0.79:
						sd.at = s.now.Add(skew) // exactly on the edge: accepted
					default:
						sd.at = s.now.Add(10*time.Minute + time.Duration(rng.Int64N(int64(10*365*24*time.Hour))))
					}
					if !sd.resent {
						sd.at = sd.at.Truncate(time.Millisecond)
						if rng.IntN(5) == 0 { // an impression: pending until its window closes
							sd.value = event(sd.id, sd.at, "search", "impression", "r-"+sd.id, fmt.Sprint("m-", rng.IntN(30)), searchCtx)
						} else {
							sd.value = event(sd.id, sd.at, "notifications", "play", "", fmt.Sprint("m-", rng.IntN(30)), `"user_id":"u1"`)
						}
					}
					byValue[sd.value] = append(byValue[sd.value], len(sends))
					these = append(these, len(sends))
					sends = append(sends, sd)
					batch = append(batch, sd.part, sd.value)
				}
				before := map[int32]time.Time{0: watermark[0], 1: watermark[1]}
				out := s.batch(batch...)
				for _, r := range out {
					switch r.Topic {
					case s.topics.Examples:
						var ex stream.Example
						if err := stream.DecodeExample(r.Value, &ex); err != nil {
							t.Fatal(err)
						}
						at := time.UnixMilli(ex.EventTime)
						if at.After(latest.Add(skew)) {
							t.Fatalf("batch %d: example %s at %s, beyond the latest clock %s + skew", b, ex.EventID, at, latest)
						}
						if at.After(examplesMax) {
							examplesMax = at
						}
						if ex.Action != ingest.ActionSampledNegative {
							outcomes["example"]++
						}
					case s.topics.DeadLetters:
						copies := byValue[string(r.Value)]
						if len(copies) == 0 {
							t.Fatalf("batch %d: a dead letter of an event not sent in it: %s", b, r.Value)
						}
						i := copies[0]
						byValue[string(r.Value)] = copies[1:]
						sd := sends[i]
						reason := stream.Header(r, stream.HeaderReason)
						outcomes[reason]++
						future := sd.at.After(sd.now.Add(skew))
						switch {
						case future != (reason == ingest.ReasonFuture):
							t.Fatalf("event %s at %s, clock %s: dead-lettered %q (beyond clock + skew: %v)", sd.id, sd.at, sd.now, reason, future)
						case reason == ingest.ReasonLate && !sd.at.Before(watermark[sd.part].Add(-lateness)) && !sd.at.Before(before[sd.part].Add(-lateness)):
							// judged below, once this batch's accepted events are known
						case reason != ingest.ReasonLate && reason != ingest.ReasonFuture:
							t.Fatalf("event %s dead-lettered %q (%s): want only late or future", sd.id, reason, stream.Header(r, stream.HeaderDetail))
						}
						sends[i].dead = true
					}
				}
				for _, i := range these {
					sd := &sends[i]
					switch {
					case sd.dead:
					case accepted[sd.id]:
						outcomes["duplicate"]++
					default:
						accepted[sd.id] = true
						if sd.at.After(watermark[sd.part]) {
							watermark[sd.part] = sd.at
						}
						if sd.at.Before(before[sd.part].Add(-lateness)) {
							t.Fatalf("event %s at %s accepted, older than its partition's watermark %s minus the lateness", sd.id, sd.at, before[sd.part])
						}
					}
				}
				for p := int32(0); p < 2; p++ {
					if w, ok := out.watermark(p); ok && w.After(latest.Add(skew)) {
						t.Fatalf("batch %d: partition %d watermark %s passed the latest clock %s + skew", b, p, w, latest)
					}
					if w, ok := out.watermark(p); ok && !w.Equal(watermark[p]) {
						t.Fatalf("batch %d: partition %d watermark %s, the newest accepted event time is %s", b, p, w, watermark[p])
					}
				}
				if examplesMax.After(latest.Add(skew)) {
					t.Fatalf("batch %d: the examples' watermark %s passed the latest clock %s + skew", b, examplesMax, latest)
				}
			}
			for i, sd := range sends { // every late dead letter was older than the watermark minus lateness
				if sd.dead && !sd.at.After(sd.now.Add(skew)) && !sd.at.Before(watermark[sd.part].Add(-lateness)) {
					t.Fatalf("send %d (%s at %s) dead-lettered late, yet not older than its partition's final watermark %s minus lateness", i, sd.id, sd.at, watermark[sd.part])
				}
			}
			m := func(name string) int { return int(metricValue(s.set, name)) }
			pending := m("unirec_ingest_pending_impressions")
			counted := outcomes["example"] + outcomes["duplicate"] + outcomes[ingest.ReasonLate] + outcomes[ingest.ReasonFuture] + pending
			if counted != len(sends) {
				t.Fatalf("%d events sent, %d accounted for (%v, %d pending)", len(sends), counted, outcomes, pending)
			}
			consumed := m("unirec_ingest_events_consumed_total") + m("unirec_ingest_pending_restored_total")
			sum := m("unirec_ingest_pending_released_total") + pending
			for _, o := range []string{"example", "joined", "duplicate", "sampled_out", "dead_letter"} {
				sum += m(fmt.Sprintf("unirec_ingest_events_total{outcome=%q}", o))
			}
			if consumed != len(sends) || sum != consumed {
				t.Fatalf("counters: consumed + restored %d, outcomes + released + pending %d, sent %d", consumed, sum, len(sends))
			}
			for _, r := range []string{ingest.ReasonLate, ingest.ReasonFuture} {
				if n := m(fmt.Sprintf("unirec_ingest_dead_letters_total{reason=%q}", r)); n != outcomes[r] {
					t.Fatalf("%s dead letters counted %d, read %d", r, n, outcomes[r])
				}
			}
			if outcomes["example"] == 0 || outcomes["duplicate"] == 0 || outcomes[ingest.ReasonLate] == 0 || outcomes[ingest.ReasonFuture] == 0 {
				t.Fatalf("the draw missed an outcome: %v, %d pending", outcomes, pending)
			}
			t.Logf("%d events over %s of clock: %v, %d pending; watermarks %s / %s, examples' %s, clock + skew %s",
				len(sends), s.now.Sub(t0), outcomes, pending, watermark[0].Format(time.TimeOnly), watermark[1].Format(time.TimeOnly),
				examplesMax.Format(time.TimeOnly), s.now.Add(skew).Format(time.TimeOnly))
		})
	}
}
