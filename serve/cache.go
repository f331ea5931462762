package serve

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"
)

// responseCache is one use case's cache of model answers. Keys include the
// model version, and the first lookup under a new version drops every
// entry, so an answer of an old version is never served and never kept.
type responseCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	version int64
	entries map[string]cacheEntry
	order   []string // keys, oldest first
}

type cacheEntry struct {
	resp    Response
	expires time.Time
}

func newResponseCache(c CacheConfig) *responseCache {
	if c.TTL <= 0 {
		return nil
	}
	return &responseCache{ttl: c.TTL, max: c.MaxEntries, entries: map[string]cacheEntry{}}
}

// get returns the answer cached under key for version, if fresh at now.
// invalidated reports that a version change emptied the cache.
func (c *responseCache) get(key string, version int64, now time.Time) (resp *Response, invalidated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		invalidated = len(c.entries) > 0
		clear(c.entries)
		c.order = c.order[:0]
		c.version = version
		return nil, invalidated
	}
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	r := e.resp
	r.Items = slices.Clone(r.Items)
	return &r, false
}

// put caches resp under key if version is still the cache's version.
func (c *responseCache) put(key string, version int64, resp *Response, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version {
		return
	}
	if _, ok := c.entries[key]; !ok {
		c.order = append(c.order, key)
	}
	c.entries[key] = cacheEntry{resp: *resp, expires: now.Add(c.ttl)}
	for len(c.entries) > c.max {
		delete(c.entries, c.order[0])
		c.order = c.order[1:]
	}
}

// cacheKey identifies what an answer depends on besides the model
// version: k, the context (sorted fields), the candidates, the exclusions
// and the fallback override. Every field is a tag byte and a
// length-prefixed value, so no id can pass for a separator: joined with
// an unescaped "\x00", exclude ["a\x00xb"] and exclude ["a", "b"] had one
// key, and one request was answered with the other's cached items.
func cacheKey(req *Request, k int) string {
	b := binary.AppendUvarint(make([]byte, 0, 128), uint64(k))
	field := func(tag byte, v string) {
		b = append(b, tag)
		b = binary.AppendUvarint(b, uint64(len(v)))
		b = append(b, v...)
	}
	keys := make([]string, 0, len(req.Context))
	for f := range req.Context {
		keys = append(keys, f)
	}
	slices.Sort(keys)
	for _, f := range keys {
		field('c', f)
		field('=', req.Context[f])
	}
	if c := req.Candidates; c != nil {
		field('t', c.Type)
		field('s', c.Set)
		for _, id := range c.IDs {
			field('i', id)
		}
	}
	for _, id := range req.Exclude {
		field('x', id)
	}
	if f := req.Fallback; f != nil {
		for _, s := range f.Chain {
			field('f', s)
		}
		for _, id := range f.Items {
			field('F', id)
		}
	}
	return string(b)
}
