package serve

import (
	"encoding/json"
	"io"
	"net/http"
)

// adminHandler wraps an admin endpoint: it answers 403 unless the replica
// has an admin token and the request bears it ("Authorization: Bearer").
func (r *Replica) adminHandler(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, hr *http.Request) {
		if len(r.opts.AdminToken) == 0 {
			writeJSON(w, http.StatusForbidden, &APIError{Message: "admin endpoints are disabled: set serve.admin_token_file or serve.admin_token_env"})
			return
		}
		if !HasBearer(hr, r.opts.AdminToken) {
			r.opts.Metrics.GetOrCreateCounter("unirec_serve_admin_denied_total").Inc()
			writeJSON(w, http.StatusUnauthorized, &APIError{Message: "missing or wrong admin token (Authorization: Bearer TOKEN)"})
			return
		}
		h(w, hr)
	}
}

// serveRollback handles POST /admin/rollback {"version": N}.
func (r *Replica) serveRollback(w http.ResponseWriter, hr *http.Request) {
	var body struct {
		Version int64 `json:"version"`
	}
	dec := json.NewDecoder(io.LimitReader(hr.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Version <= 0 {
		writeJSON(w, http.StatusBadRequest, &APIError{Message: `send {"version": N} with N > 0`})
		return
	}
	if err := r.Rollback(body.Version); err != nil {
		writeJSON(w, http.StatusConflict, &APIError{Message: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": body.Version, "held": true})
}

// serveResume handles POST /admin/resume.
func (r *Replica) serveResume(w http.ResponseWriter, _ *http.Request) {
	r.Resume()
	m := r.live()
	var v int64
	if m != nil {
		v = m.Version
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": v, "held": false})
}
