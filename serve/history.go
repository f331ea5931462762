package serve

import (
	"sync"
	"time"
)

// History is the recent engagements of each user, read from the events
// stream, for the "exclude what the user engaged with recently" rule. It
// is bounded: at most PerUser engagements per user (the newest) and at
// most Users users (the user seen first is forgotten first).
type History struct {
	mu      sync.Mutex
	perUser int
	maxUser int
	users   map[string][]engagement
	order   []string // users in the order they were first seen
}

type engagement struct {
	item string
	at   time.Time
}

// NewHistory returns an empty history with the given bounds.
func NewHistory(perUser, users int) *History {
	return &History{perUser: max(perUser, 1), maxUser: max(users, 1), users: map[string][]engagement{}}
}

// Observe records that user engaged with item at (event time); impressions
// are not engagements.
func (h *History) Observe(user, action, item string, at time.Time) {
	if user == "" || item == "" || action == "impression" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	list, ok := h.users[user]
	if !ok {
		h.order = append(h.order, user)
		if len(h.order) > h.maxUser {
			delete(h.users, h.order[0])
			h.order = h.order[1:]
		}
	}
	if len(list) == h.perUser {
		list = append(list[:0], list[1:]...)
	}
	h.users[user] = append(list, engagement{item: item, at: at})
}

// Since returns the items user engaged with at or after since.
func (h *History) Since(user string, since time.Time) map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]bool{}
	for _, e := range h.users[user] {
		if !e.at.Before(since) {
			out[e.item] = true
		}
	}
	return out
}
