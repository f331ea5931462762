package datasets

import (
	"time"

	"github.com/unirec/unirec/ingest"
)

// Week is the unit RebaseWeeks shifts by.
const Week = 7 * 24 * time.Hour

// WeeksShift is the whole number of weeks that moves last into the week
// before now, (now - 1 week, now]: every time shifted by it keeps its
// weekday and hour of day (in UTC), so hour-of-day and day-of-week
// features see what the log saw. It is 0 when last is already in that week,
// and negative when last is after now.
func WeeksShift(last, now time.Time) time.Duration {
	gap := now.Sub(last)
	weeks := gap / Week
	if gap < 0 && gap%Week != 0 {
		weeks-- // floor, not truncation toward zero
	}
	return weeks * Week
}

// RebaseWeeks shifts every event time by the whole weeks that bring the
// last event (evs are in event-time order) into the week before now. It
// keeps order, spacing, weekdays and hours of day, and returns the shift.
func RebaseWeeks(evs []ingest.Event, now time.Time) time.Duration {
	if len(evs) == 0 {
		return 0
	}
	shift := WeeksShift(evs[len(evs)-1].Time, now)
	for i := range evs {
		evs[i].Time = evs[i].Time.Add(shift)
	}
	return shift
}

// RebaseTo shifts every event time so that the last event (evs are in
// event-time order) falls on at, keeping order and spacing; a zero at
// leaves the times as they are.
func RebaseTo(evs []ingest.Event, at time.Time) {
	if at.IsZero() || len(evs) == 0 {
		return
	}
	shift := at.Sub(evs[len(evs)-1].Time)
	for i := range evs {
		evs[i].Time = evs[i].Time.Add(shift)
	}
}
