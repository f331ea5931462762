package online

// Feature admission and expiry, as in Monolith's collisionless tables: a
// feature gets its own row only after it has been seen MinCount times, and
// a row (or a sightings counter) unused for TTL of event time is expired.
// Both decisions depend only on the examples and the watermark before each
// example, so they are deterministic, and the counters are written in the
// same Pebble batch as the rows and offsets.

// sightings counts how often a feature without a row was seen.
type sightings struct {
	n    uint32
	last int64 // event time of the latest sighting, unix ms
}

// admission holds the sightings of features not admitted yet.
type admission struct {
	minCount          uint32
	ttl               int64 // ms; 0 never expires
	counts            map[uint64]*sightings
	dirty             map[uint64]struct{} // changed or deleted since the last commit
	admitted, pending func(int)           // metrics
}

func newAdmission(minCount int, ttl int64) *admission {
	return &admission{minCount: uint32(max(minCount, 1)), ttl: ttl, counts: map[uint64]*sightings{}, dirty: map[uint64]struct{}{}}
}

// expired says whether something last used at last is expired at watermark.
func expired(ttl, last, watermark int64) bool {
	return ttl > 0 && watermark-last > ttl
}

// admit records a sighting of id at now and says whether it earns a row.
func (a *admission) admit(id uint64, now, watermark int64) bool {
	if a.minCount <= 1 {
		return true
	}
	c := a.counts[id]
	if c == nil {
		c = &sightings{}
		a.counts[id] = c
	} else if expired(a.ttl, c.last, watermark) {
		c.n = 0
	}
	c.n++
	c.last = max(c.last, now)
	a.dirty[id] = struct{}{}
	if c.n < a.minCount {
		return false
	}
	delete(a.counts, id)
	return true
}

// sweep deletes the expired counters.
func (a *admission) sweep(watermark int64) {
	for id, c := range a.counts {
		if expired(a.ttl, c.last, watermark) {
			delete(a.counts, id)
			a.dirty[id] = struct{}{}
		}
	}
}
