package online

import (
	"strings"
	"time"
	"unicode"

	"github.com/cespare/xxhash/v2"

	"github.com/unirec/unirec/stream"
)

// Feature namespaces. The context side and the item side have separate
// namespaces: a query token and the same word in an item title are two
// embeddings that learn to align.
const (
	nsTask      = "task"
	nsQuery     = "q"
	nsQueryPair = "q2"
	nsHour      = "hour"
	nsWeekday   = "dow"
	nsItem      = "item"
	nsItemType  = "itype"
	nsItemCat   = "icat"
	nsItemTitle = "ititle"
	fieldQuery  = "query"
)

// Featurizer maps contexts and items to hashed feature ids.
type Featurizer struct {
	// Isolated gives every task its own feature space: no parameter is
	// shared between tasks (the per-task baseline).
	Isolated bool
}

// FeatureID is the hashed id of (namespace, value) for a task.
func (f Featurizer) FeatureID(task, ns, value string) uint64 {
	h := xxhash.New()
	if f.Isolated {
		h.WriteString(task)
		h.WriteString("\x01")
	}
	h.WriteString(ns)
	h.WriteString("\x00")
	h.WriteString(value)
	return h.Sum64()
}

// Context appends the feature ids of a request context: the task type, every
// unified context field (sentinel values included), query tokens and
// bigrams, and the hour of day and day of week of t.
func (f Featurizer) Context(dst []uint64, task string, ctx []stream.Field, t time.Time) []uint64 {
	dst = append(dst, f.FeatureID(task, nsTask, task))
	for _, fl := range ctx {
		if fl.Name == fieldQuery && fl.Value != "" {
			toks := Tokens(fl.Value)
			for i, tok := range toks {
				dst = append(dst, f.FeatureID(task, nsQuery, tok))
				if i > 0 {
					dst = append(dst, f.FeatureID(task, nsQueryPair, toks[i-1]+" "+tok))
				}
			}
			if len(toks) > 0 {
				continue
			}
		}
		dst = append(dst, f.FeatureID(task, "c:"+fl.Name, fl.Value))
	}
	t = t.UTC()
	dst = append(dst, f.FeatureID(task, nsHour, itoa(t.Hour())))
	dst = append(dst, f.FeatureID(task, nsWeekday, itoa(int(t.Weekday()))))
	return dst
}

// Item appends the feature ids of an item: its id and its metadata (type,
// categories, title tokens), so an item with metadata but no history still
// gets a vector.
func (f Featurizer) Item(dst []uint64, task, id string, meta stream.ItemMeta) []uint64 {
	dst = append(dst, f.FeatureID(task, nsItem, id))
	if meta.Type != "" {
		dst = append(dst, f.FeatureID(task, nsItemType, meta.Type))
	}
	for _, c := range meta.Categories {
		dst = append(dst, f.FeatureID(task, nsItemCat, strings.ToLower(c)))
	}
	for _, tok := range Tokens(meta.Title) {
		dst = append(dst, f.FeatureID(task, nsItemTitle, tok))
	}
	return dst
}

// Tokens lower-cases s and splits it into letter/digit runs.
func Tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return string(rune('0'+i/10)) + string(rune('0'+i%10))
}
