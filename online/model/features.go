package model

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"

	"github.com/unirec/unirec/stream"
)

// Feature namespaces. The context side and the item side have separate
// namespaces: a query token and the same word in an item title are two
// embeddings that learn to align.
const (
	nsTask        = "task"
	nsQuery       = "q"
	nsQueryPair   = "q2"
	nsHour        = "hour"
	nsWeekday     = "dow"
	nsContext     = "c:" // + field name
	NamespaceItem = "item"
	nsItemType    = "itype"
	nsItemCat     = "icat"
	nsItemTitle   = "ititle"
	fieldQuery    = "query"
)

// The namespaces' hashes, computed once: featurizing hashes them for every
// example otherwise.
var (
	hTask, hQuery, hQueryPair = xxhash.Sum64String(nsTask), xxhash.Sum64String(nsQuery), xxhash.Sum64String(nsQueryPair)
	hHour, hWeekday           = xxhash.Sum64String(nsHour), xxhash.Sum64String(nsWeekday)
	hContext, hItem           = xxhash.Sum64String(nsContext), xxhash.Sum64String(NamespaceItem)
	hItemType, hItemCat       = xxhash.Sum64String(nsItemType), xxhash.Sum64String(nsItemCat)
	hItemTitle                = xxhash.Sum64String(nsItemTitle)
)

// Featurizer maps contexts and items to hashed feature ids. It allocates
// nothing: ids are a namespace seed mixed with a hash of the value, and
// tokens are hashed as they are scanned.
type Featurizer struct {
	// Isolated gives every task its own feature space: no parameter is
	// shared between tasks (the per-task baseline).
	Isolated bool
}

// FeatureID is the hashed id of (namespace, value) for a task.
func (f Featurizer) FeatureID(task, ns, value string) uint64 {
	return f.featureID(task, xxhash.Sum64String(ns), value)
}

func (f Featurizer) featureID(task string, ns uint64, value string) uint64 {
	return Mix64(f.seed(task, ns) ^ xxhash.Sum64String(value))
}

// seed is the hash of a namespace (ns, its hash), and of the task in
// isolated mode.
func (f Featurizer) seed(task string, ns uint64) uint64 {
	h := ns
	if f.Isolated {
		h = Mix64(h ^ xxhash.Sum64String(task)*0x9e3779b97f4a7c15)
	}
	return h
}

// contextSeed is the seed of a context field's namespace ("c:" + name)
// without building the string.
func (f Featurizer) contextSeed(task, name string) uint64 {
	h := Mix64(hContext ^ xxhash.Sum64String(name))
	if f.Isolated {
		h = Mix64(h ^ xxhash.Sum64String(task)*0x9e3779b97f4a7c15)
	}
	return h
}

// Mix64 is the splitmix64 finalizer: a bijection that spreads every input
// bit over the output.
func Mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Context appends the feature ids of a request context: the task type, every
// unified context field (sentinel values included), query tokens and
// bigrams, and the hour of day and day of week of t.
func (f Featurizer) Context(dst []uint64, task string, ctx []stream.Field, t time.Time) []uint64 {
	dst = append(dst, f.featureID(task, hTask, task))
	for _, fl := range ctx {
		if fl.Name == fieldQuery && fl.Value != "" {
			n := len(dst)
			dst = f.queryTokens(dst, task, fl.Value)
			if len(dst) > n {
				continue
			}
		}
		dst = append(dst, Mix64(f.contextSeed(task, fl.Name)^xxhash.Sum64String(fl.Value)))
	}
	t = t.UTC()
	dst = append(dst, Mix64(f.seed(task, hHour)^uint64(t.Hour())))
	return append(dst, Mix64(f.seed(task, hWeekday)^uint64(t.Weekday())))
}

// queryTokens appends the ids of the tokens of q and of its bigrams.
func (f Featurizer) queryTokens(dst []uint64, task, q string) []uint64 {
	tok, pair := f.seed(task, hQuery), f.seed(task, hQueryPair)
	var prev uint64
	first := true
	forEachToken(q, func(h uint64) {
		dst = append(dst, Mix64(tok^h))
		if !first {
			dst = append(dst, Mix64(pair^(prev*0x9e3779b97f4a7c15+h)))
		}
		prev, first = h, false
	})
	return dst
}

// Item appends the feature ids of an item: its id, then its metadata
// (type, categories, title tokens), so an item with metadata but no history
// still gets a vector. The first ItemIDRows ids are the identity rows.
func (f Featurizer) Item(dst []uint64, task, id string, meta stream.ItemMeta) []uint64 {
	dst = append(dst, f.featureID(task, hItem, id))
	if meta.Type != "" {
		dst = append(dst, f.featureID(task, hItemType, meta.Type))
	}
	if len(meta.Categories) > 0 {
		cat := f.seed(task, hItemCat)
		for _, c := range meta.Categories {
			dst = append(dst, Mix64(cat^foldHash(c)))
		}
	}
	if meta.Title != "" {
		title := f.seed(task, hItemTitle)
		forEachToken(meta.Title, func(h uint64) { dst = append(dst, Mix64(title^h)) })
	}
	return dst
}

// forEachToken calls fn with the hash of every lower-cased letter/digit
// run of s, in order, without allocating.
func forEachToken(s string, fn func(h uint64)) {
	const offset, prime = 14695981039346656037, 1099511628211
	h, in := uint64(offset), false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		i += size
		if !isTokenRune(r) {
			if in {
				fn(h)
			}
			h, in = offset, false
			continue
		}
		h, in = hashRune(h, unicode.ToLower(r), prime), true
	}
	if in {
		fn(h)
	}
}

// foldHash is the FNV-1a hash of the lower-cased s.
func foldHash(s string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for _, r := range s {
		h = hashRune(h, unicode.ToLower(r), prime)
	}
	return h
}

func isTokenRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// hashRune feeds the UTF-8 bytes of r into an FNV-1a hash.
func hashRune(h uint64, r rune, prime uint64) uint64 {
	if r < utf8.RuneSelf {
		return (h ^ uint64(r)) * prime
	}
	var b [utf8.UTFMax]byte
	n := utf8.EncodeRune(b[:], r)
	for _, c := range b[:n] {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

// Tokens lower-cases s and splits it into letter/digit runs, as the
// featurizer does.
func Tokens(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		switch {
		case isTokenRune(r) && start < 0:
			start = i
		case !isTokenRune(r) && start >= 0:
			out = append(out, lower(s[start:i]))
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, lower(s[start:]))
	}
	return out
}

func lower(s string) string {
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, unicode.ToLower(r))
	}
	return string(b)
}
