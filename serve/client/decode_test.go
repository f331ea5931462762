package client

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/unirec/unirec/serve"
)

// randomResponse is an answer with every optional field on or off, ids
// that need escaping (one answer in four), and scores across the exponent cutoffs.
func randomResponse(rng *rand.Rand, n int) *serve.Response {
	ids := []string{"", "item-1", "m-42", `a"b`, `back\slash`, "a<b", "tab\tx", "\xff", "café"}
	if n%4 != 0 { // plain ids only
		ids = ids[:3]
	}
	pick := func() string { return ids[rng.IntN(len(ids))] }
	r := &serve.Response{Cached: rng.IntN(2) == 0,
		Model:    serve.ModelInfo{Version: rng.Int64N(1 << 40), StalenessMS: rng.Int64N(1e6) - 1000, Stale: rng.IntN(2) == 0},
		Fallback: serve.FallbackInfo{Used: rng.IntN(2) == 0},
		Timing:   serve.TimingInfo{TotalUS: rng.Int64N(1e7), QueueUS: rng.Int64N(1e3)}}
	if n%3 != 0 {
		r.Model.Watermark, r.Fallback.Reason, r.Fallback.Source = pick(), pick(), pick()
	}
	if n%7 != 0 {
		r.Items = []serve.Item{}
		for range rng.IntN(20) {
			s := rng.Float64() * math.Pow(10, float64(rng.IntN(50)-25))
			if rng.IntN(4) == 0 {
				s = -s
			}
			r.Items = append(r.Items, serve.Item{ID: pick() + strconv.Itoa(rng.IntN(1000)), Score: s})
		}
	}
	return r
}

// decodeResponse gives what json.Unmarshal gives, value or error, for the
// replica's layout (read by the scanner, which must take most of them) and
// for the same answers respaced, reordered, truncated or with bytes
// changed (where the scanner must give up or agree).
func TestDecodeResponseIsUnmarshals(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(raw []byte) {
		t.Helper()
		var got, want serve.Response
		gerr, werr := decodeResponse(raw, &got), json.Unmarshal(raw, &want)
		if (gerr == nil) != (werr == nil) || gerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v, %v\nwant %+v, %v", raw, got, gerr, want, werr)
		}
	}
	scanned := 0
	for n := range 2000 {
		var buf bytes.Buffer
		json.NewEncoder(&buf).Encode(randomResponse(rng, n))
		raw := buf.Bytes()
		check(raw)
		var r serve.Response
		if s := (scanner{b: raw}); s.response(&r) {
			scanned++
		}
		check(bytes.TrimSpace(raw))
		check(bytes.ReplaceAll(raw, []byte(`,"`), []byte(`, "`)))
		check(bytes.Replace(raw, []byte(`"items"`), []byte(`"extra":1,"items"`), 1))
		check(raw[:rng.IntN(len(raw))])
		mut := bytes.Clone(raw)
		mut[rng.IntN(len(mut))] = "0-.eE+9\"}]:,x \\"[rng.IntN(15)]
		check(mut)
	}
	if scanned < 1000 {
		t.Fatalf("the scanner read %d of 2000 answers in the replica's layout", scanned)
	}
	for _, raw := range []string{`{"items":[{"id":"a","score":01}]}`, `{"items":[{"id":"a","score":1.}]}`, `{"items":[{"id":"a","score":-}]}`,
		`{"items":[{"id":"a","score":1e}]}`, `{"items":[{"id":"a","score":1e999}]}`, `{"items":null,"model":{"version":1.5}}`} {
		check([]byte(strings.Replace(raw, "]}", `],"model":{"version":1,"staleness_ms":0,"stale":false},"fallback":{"used":false},"cached":false,"timing":{"total_us":1,"queue_us":0}}`, 1)))
	}
}
