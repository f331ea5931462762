package serve

import (
	"context"
	"strings"
	"testing"

	"github.com/unirec/unirec/ingest"
)

func testReplica(t testing.TB) *Replica {
	reg, err := ingest.NewRegistry(ingest.DefaultCanvases())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReplica(ReplicaOptions{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecodeRequestErrorsNameTheProblem(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		_, err := decodeRequest(strings.NewReader(body))
		if err == nil || err.Status != 400 || !strings.Contains(err.Message, want) {
			t.Errorf("%q: got %v, want 400 containing %q", body, err, want)
		}
	}
	f(``, "empty body")
	f(`{`, "bad JSON")
	f(`{"use_case":1}`, "use_case")
	f(`{"use_case":"search","colour":"red"}`, "colour")
	f(`{"use_case":"search"} {}`, "trailing data")
	f(`{"k":"ten"}`, "k")
}

// FuzzRecommendRequest: no request body makes the API answer anything but
// 200 or 400, or panic.
func FuzzRecommendRequest(f *testing.F) {
	f.Add(`{"use_case":"search","context":{"user_id":"u","query":"space"},"k":10}`)
	f.Add(`{"use_case":"related_items","context":{"user_id":"u","source_item_id":"m-1","time":"x"},"k":-1}`)
	r := testReplica(f)
	f.Fuzz(func(t *testing.T, body string) {
		req, aerr := decodeRequest(strings.NewReader(body))
		if aerr != nil {
			if aerr.Status != 400 {
				t.Fatalf("status %d", aerr.Status)
			}
			return
		}
		if _, aerr := r.Recommend(context.Background(), req); aerr != nil && aerr.Status != 400 {
			t.Fatalf("status %d: %s", aerr.Status, aerr.Message)
		}
	})
}
