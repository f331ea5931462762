package datasets

import (
	"testing"
	"time"

	"github.com/unirec/unirec/ingest"
)

func TestWeeksShiftKeepsWeekdayAndHour(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 30, 0, 0, time.UTC) // a Wednesday
	f := func(last time.Time) {
		t.Helper()
		shift := WeeksShift(last, now)
		got := last.Add(shift)
		if shift%Week != 0 || got.After(now) || !got.After(now.Add(-Week)) {
			t.Errorf("last %s: shift %s lands at %s, want whole weeks into (now-1w, now]", last, shift, got)
		}
		if got.Weekday() != last.Weekday() || got.Hour() != last.Hour() || got.Minute() != last.Minute() {
			t.Errorf("last %s moved to %s: weekday or time of day changed", last, got)
		}
	}
	f(time.Date(2018, 9, 24, 14, 0, 0, 0, time.UTC)) // years before
	f(now)                                           // exactly now
	f(now.Add(-Week))                                // exactly a week before: one more week
	f(now.Add(-time.Minute))                         // within the week
	f(time.Date(2027, 3, 1, 23, 59, 0, 0, time.UTC)) // after now
	f(now.Add(3 * Week))                             // whole weeks after now
}

func TestRebaseWeeksKeepsSpacing(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 30, 0, 0, time.UTC)
	t0 := time.Date(2017, 1, 1, 10, 0, 0, 0, time.UTC)
	evs := []ingest.Event{{Time: t0}, {Time: t0.Add(time.Hour)}, {Time: t0.Add(50 * time.Hour)}}
	shift := RebaseWeeks(evs, now)
	for i, d := range []time.Duration{0, time.Hour, 50 * time.Hour} {
		if want := t0.Add(d).Add(shift); !evs[i].Time.Equal(want) {
			t.Errorf("event %d at %s, want %s", i, evs[i].Time, want)
		}
	}
	if RebaseWeeks(nil, now) != 0 {
		t.Error("no events must not shift")
	}
}
