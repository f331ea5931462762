package serve

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// HasBearer says whether hr bears token ("Authorization: Bearer TOKEN"),
// compared in constant time. An empty token is never borne.
func HasBearer(hr *http.Request, token []byte) bool {
	got, ok := strings.CutPrefix(hr.Header.Get("Authorization"), "Bearer ")
	return ok && len(token) > 0 && subtle.ConstantTimeCompare([]byte(got), token) == 1
}

// apiHandler wraps an API endpoint (recommend, batch, use cases, model):
// with an API token configured, a request without it gets 401, counted in
// unirec_serve_api_denied_total. Without one the API is open.
func (r *Replica) apiHandler(h http.HandlerFunc) http.HandlerFunc {
	if len(r.opts.APIToken) == 0 {
		return h
	}
	denied := r.opts.Metrics.GetOrCreateCounter("unirec_serve_api_denied_total")
	return func(w http.ResponseWriter, hr *http.Request) {
		if !HasBearer(hr, r.opts.APIToken) {
			denied.Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="unirec"`)
			writeJSON(w, http.StatusUnauthorized, &APIError{Message: "missing or wrong API token (Authorization: Bearer TOKEN)"})
			return
		}
		h(w, hr)
	}
}
