package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The hand-written answer is byte for byte what encoding/json writes, over
// answers with every optional field on and off, ids that need escaping
// (quotes, HTML characters, control characters, invalid UTF-8, U+2028)
// and scores across the exponent cutoffs.
func TestResponseEncodingIsEncodingJSONs(t *testing.T) {
	// A field added to the answer must be added to appendJSON too.
	for typ, fields := range map[reflect.Type]int{
		reflect.TypeFor[Response](): 5, reflect.TypeFor[Item](): 2, reflect.TypeFor[ModelInfo](): 4,
		reflect.TypeFor[FallbackInfo](): 3, reflect.TypeFor[TimingInfo](): 2,
	} {
		if typ.NumField() != fields {
			t.Fatalf("%v has %d fields, appendJSON writes %d: update it", typ, typ.NumField(), fields)
		}
	}
	ids := []string{"", "item-1", `a"b`, `back\slash`, "a<b", "a>b", "fish&chips", "tab\tnew\nline\x00", "\xff\xfe", "café", "\u2028\u2029", "émoji 🎬"}
	scores := []float64{0, math.Copysign(0, -1), 1, 0.5, 1e-6, 9.99e-7, 1e-7, 3e-9, 1e21, 9.9e20, 1e22, -2.5e-8, 0.1 + 0.2, math.SmallestNonzeroFloat64, math.MaxFloat64}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	for n := range 500 {
		resp := &Response{Cached: rng.IntN(2) == 0,
			Model:    ModelInfo{Version: rng.Int64N(1 << 40), StalenessMS: rng.Int64N(1e6) - 1000, Stale: rng.IntN(2) == 0},
			Fallback: FallbackInfo{Used: rng.IntN(2) == 0},
			Timing:   TimingInfo{TotalUS: rng.Int64N(1e7), QueueUS: rng.Int64N(1e3)}}
		if n%5 != 0 {
			resp.Model.Watermark, resp.Fallback.Reason, resp.Fallback.Source = pick(ids), pick(ids), pick(ids)
		}
		if n%7 != 0 {
			resp.Items = []Item{}
			for range rng.IntN(20) {
				s := scores[rng.IntN(len(scores))]
				if rng.IntN(2) == 0 {
					s = rng.Float64() * math.Pow(10, float64(rng.IntN(50)-25))
				}
				resp.Items = append(resp.Items, Item{ID: pick(ids) + strconv.Itoa(rng.IntN(1000)), Score: s})
			}
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(resp); err != nil {
			t.Fatal(err)
		}
		got, ok := resp.appendJSON(nil)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("answer %d:\n got %s\nwant %s", n, got, want.Bytes())
		}
	}
}

// An answer is sent in one piece with its length; a score that is not a
// JSON number is answered as encoding/json answers it.
func TestResponseIsSentWithItsLength(t *testing.T) {
	resp := &Response{Items: []Item{{ID: "a", Score: 0.25}}}
	w := httptest.NewRecorder()
	writeResponse(w, resp)
	var back Response
	if err := json.Unmarshal(w.Body.Bytes(), &back); err != nil || !reflect.DeepEqual(&back, resp) {
		t.Fatalf("answer %q decodes to %+v, %v", w.Body.Bytes(), back, err)
	}
	if w.Code != http.StatusOK || w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, headers %v for a %d-byte answer", w.Code, w.Header(), w.Body.Len())
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		resp.Items[0].Score = bad
		w = httptest.NewRecorder()
		writeResponse(w, resp)
		var e APIError
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusInternalServerError || !strings.Contains(e.Message, `item "a" scored`) {
			t.Fatalf("a score of %v answered %d %q (%v), want a 500 naming the item", bad, w.Code, w.Body.Bytes(), err)
		}
	}
}
