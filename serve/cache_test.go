package serve

import "testing"

// Requests that differ get different cache keys, however their ids and
// context values are spelled: with fields joined by an unescaped "\x00",
// each pair below had one key.
func TestCacheKeysDoNotCollide(t *testing.T) {
	pairs := [][2]Request{
		{{Exclude: []string{"a\x00xb"}}, {Exclude: []string{"a", "b"}}},
		{{Context: map[string]string{"a=b": "c"}}, {Context: map[string]string{"a": "b=c"}}},
		{{Context: map[string]string{"u": "1\x00cv=2"}}, {Context: map[string]string{"u": "1", "v": "2"}}},
		{{Candidates: &Candidates{IDs: []string{"m-1\x00xm-2"}}}, {Candidates: &Candidates{IDs: []string{"m-1"}}, Exclude: []string{"m-2"}}},
		{{Fallback: &FallbackOverride{Items: []string{"s\x00Fs"}}}, {Fallback: &FallbackOverride{Items: []string{"s", "s"}}}},
	}
	for _, p := range pairs {
		if a, b := cacheKey(&p[0], 10), cacheKey(&p[1], 10); a == b {
			t.Errorf("%+v and %+v share the cache key %q", p[0], p[1], a)
		}
	}
	if cacheKey(&Request{}, 1) == cacheKey(&Request{}, 2) {
		t.Error("k is not in the key")
	}
}
