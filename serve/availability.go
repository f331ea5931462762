package serve

import (
	"encoding/json"
	"fmt"
	"sync"
)

// Availability is in which countries each item may be shown, from the
// catalog topic (records keyed by item id, JSON values with a "countries"
// list; a tombstone or "deleted": true forgets the item). An item the
// catalog does not restrict is available everywhere.
type Availability struct {
	mu        sync.RWMutex
	countries map[string]map[string]bool
}

// NewAvailability returns an availability without restrictions.
func NewAvailability() *Availability {
	return &Availability{countries: map[string]map[string]bool{}}
}

// Set restricts item to countries (none lifts the restriction).
func (a *Availability) Set(item string, countries []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(countries) == 0 {
		delete(a.countries, item)
		return
	}
	set := make(map[string]bool, len(countries))
	for _, c := range countries {
		set[c] = true
	}
	a.countries[item] = set
}

// Available reports whether item may be shown in country.
func (a *Availability) Available(item, country string) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	set, ok := a.countries[item]
	return !ok || set[country]
}

// ApplyCatalogRecord applies one record of the catalog topic.
func (a *Availability) ApplyCatalogRecord(key, value []byte) error {
	if len(key) == 0 {
		return fmt.Errorf("cannot apply catalog record: no key (the item id)")
	}
	if value == nil {
		a.Set(string(key), nil)
		return nil
	}
	var v struct {
		Countries []string `json:"countries"`
		Deleted   bool     `json:"deleted"`
	}
	if err := json.Unmarshal(value, &v); err != nil {
		return fmt.Errorf("cannot decode catalog record %q: %w", key, err)
	}
	if v.Deleted {
		v.Countries = nil
	}
	a.Set(string(key), v.Countries)
	return nil
}
