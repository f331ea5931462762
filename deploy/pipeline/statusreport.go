package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/unirec/unirec/serve"
)

// WriteStatus writes what `unirec status` prints: the topic ends, ingest
// lag, recent dead letters and errors of cfg's cluster, then each process
// of processes (base URLs) with its model version and staleness and, for
// replicas, each use case with its freshness policy. Replicas are asked
// with cfg's API token.
func WriteStatus(ctx context.Context, out io.Writer, cfg Config, processes []string) error {
	st := NewStatusSource(cfg, "cli").Get(ctx)
	w := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(w, "KAFKA\t%s\n", strings.Join(st.Brokers, ","))
	for topic, end := range st.Topics {
		fmt.Fprintf(w, "  topic %s\tend offset %d\n", topic, end)
	}
	var lag int64
	for _, l := range st.Lag {
		lag += max(l.Lag, 0)
	}
	fmt.Fprintf(w, "  ingest lag\t%d records over %d partitions\n", lag, len(st.Lag))
	fmt.Fprintf(w, "  recent dead letters\t%d\n", len(st.DeadLetters))
	for _, e := range st.Errors {
		fmt.Fprintf(w, "  error\t%s\n", e)
	}
	fmt.Fprintln(w, "PROCESSES")
	for _, base := range processes {
		line, useCases := processLine(ctx, strings.TrimRight(base, "/"), string(cfg.Secrets.APIToken))
		fmt.Fprintf(w, "  %s\t%s\n", base, line)
		for _, u := range useCases {
			fmt.Fprintf(w, "    use case %s\t%s\n", u.Name, useCaseLine(u))
		}
	}
	return w.Flush()
}

// useCaseLine is what a replica's use case serves, by its policy.
func useCaseLine(u serve.UseCaseState) string {
	if u.Version == 0 {
		return fmt.Sprintf("no version (%s); policy %s", u.Unavailable, u.Policy)
	}
	stale := ""
	if u.Stale {
		stale = ", STALE"
	}
	return fmt.Sprintf("version %d, %s stale%s; policy %s", u.Version, (time.Duration(u.StalenessMS) * time.Millisecond).String(), stale, u.Policy)
}

// processLine summarises one process from its /v1/model (asked with the
// API token, if any) and /v1/trainer/metrics endpoints, and returns what
// its use cases serve.
func processLine(ctx context.Context, base, token string) (string, []serve.UseCaseState) {
	var parts []string
	var model struct {
		Ready     bool                          `json:"ready"`
		Version   int64                         `json:"version"`
		Watermark time.Time                     `json:"watermark"`
		Applied   int64                         `json:"applied"`
		UseCases  map[string]serve.UseCaseState `json:"use_cases"`
	}
	err := getJSON(ctx, base+"/v1/model", token, &model)
	var hs *httpStatusError
	if errors.As(err, &hs) && hs.code == http.StatusUnauthorized {
		if token == "" {
			parts = append(parts, "serving: needs an API token (pass --config with its serve.api_token_file or serve.api_token_env)")
		} else {
			parts = append(parts, "serving: refuses the API token of --config (serve.api_token_file or serve.api_token_env)")
		}
	}
	if err == nil {
		if model.Ready {
			// The watermark is event time: a producer's clock a little
			// ahead of this one would show a negative staleness.
			parts = append(parts, fmt.Sprintf("serving version %d, watermark %s (%s stale), %d examples",
				model.Version, model.Watermark.Format(time.RFC3339), max(0, time.Since(model.Watermark)).Round(time.Millisecond), model.Applied))
		} else {
			parts = append(parts, "serving: no model yet")
		}
	}
	var trainer struct {
		Applied int64 `json:"applied"`
	}
	if err := getJSON(ctx, base+"/v1/trainer/metrics", "", &trainer); err == nil {
		parts = append(parts, fmt.Sprintf("trainer: %d examples applied", trainer.Applied))
	}
	if len(parts) == 0 { // not a replica or trainer: an ingest process says its role
		var st struct {
			Role    string    `json:"role"`
			Started time.Time `json:"started"`
		}
		if err := getJSON(ctx, base+"/v1/status", "", &st); err == nil && st.Role != "" {
			parts = append(parts, fmt.Sprintf("%s: up since %s (its consumer lag is under KAFKA)", st.Role, st.Started.Format(time.RFC3339)))
		}
	}
	if len(parts) == 0 {
		return "unreachable or not a unirec process", nil
	}
	states := slices.Collect(maps.Values(model.UseCases))
	slices.SortFunc(states, func(a, b serve.UseCaseState) int { return strings.Compare(a.Name, b.Name) })
	return strings.Join(parts, "; "), states
}

// getJSON GETs url into v, bearing token when it is not empty.
func getJSON(ctx context.Context, url, token string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return &httpStatusError{url: url, code: resp.StatusCode}
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// httpStatusError is a non-200 answer to getJSON.
type httpStatusError struct {
	url  string
	code int
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("%s: HTTP %d", e.url, e.code) }
