package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// cmdStatus prints what is running: topic ends, ingest lag, recent dead
// letters, and the model version and staleness of every process given.
func cmdStatus(ctx context.Context, args []string) error {
	f := newFlags("status")
	procs := f.fs.String("processes", "http://localhost:8080", "comma-separated base URLs of unirec processes to ask (serve, train, run)")
	cfg, err := f.load(args)
	if err != nil {
		return err
	}
	st := newStatusSource(cfg, "cli").get(ctx)
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
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
	for _, base := range strings.Split(*procs, ",") {
		fmt.Fprintf(w, "  %s\t%s\n", base, processLine(ctx, strings.TrimRight(base, "/")))
	}
	return w.Flush()
}

// processLine summarises one process from its /v1/model and
// /v1/trainer/metrics endpoints.
func processLine(ctx context.Context, base string) string {
	var parts []string
	var model struct {
		Ready     bool      `json:"ready"`
		Version   int64     `json:"version"`
		Watermark time.Time `json:"watermark"`
		Applied   int64     `json:"applied"`
	}
	if err := getJSON(ctx, base+"/v1/model", &model); err == nil {
		if model.Ready {
			parts = append(parts, fmt.Sprintf("serving version %d, watermark %s (%s stale), %d examples",
				model.Version, model.Watermark.Format(time.RFC3339), time.Since(model.Watermark).Round(time.Millisecond), model.Applied))
		} else {
			parts = append(parts, "serving: no model yet")
		}
	}
	var trainer struct {
		Applied int64 `json:"applied"`
	}
	if err := getJSON(ctx, base+"/v1/trainer/metrics", &trainer); err == nil {
		parts = append(parts, fmt.Sprintf("trainer: %d examples applied", trainer.Applied))
	}
	if len(parts) == 0 {
		return "unreachable or not a unirec process"
	}
	return strings.Join(parts, "; ")
}

func getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
