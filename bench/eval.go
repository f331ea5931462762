package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/unirec/unirec/ingest"
	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/serve/client"
	"github.com/unirec/unirec/stream"
)

// System is one running unirec deployment under evaluation.
type System struct {
	Name   string
	Broker string // host:port of its Kafka
	API    string // base URL of its serving API
	Token  string // its API token (serve.api_token_file/env); empty when it has none
}

// EvalOptions configures a global-timeline evaluation.
type EvalOptions struct {
	Events []ingest.Event // the whole log, in event-time order
	// Cut is the fraction of events (in time order) used for training; the
	// rest is the future the systems are evaluated on.
	Cut float64
	K   int
	// QueriesPerTask bounds the evaluated future engagements per task
	// (evenly spread over the test period).
	QueriesPerTask int
	Systems        []System
	Topic          string
	Progress       io.Writer
	// OnTraining, when set, is called about every 200 ms while a system
	// trains, with the system's progressive metrics (for plots).
	OnTraining func(system string, seconds float64, tasks map[string]TaskMetrics)
}

// TaskMetrics is the progressive validation of one task as the trainer
// reports it at /v1/trainer/metrics.
type TaskMetrics struct {
	Examples int64   `json:"examples"`
	LogLoss  float64 `json:"logloss"`
	AUC      float64 `json:"auc"`
}

// TrainerMetrics reads /v1/trainer/metrics.
func TrainerMetrics(ctx context.Context, api string) (map[string]TaskMetrics, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", api+"/v1/trainer/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read trainer metrics: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Tasks map[string]TaskMetrics `json:"tasks"`
	}
	return out.Tasks, json.NewDecoder(resp.Body).Decode(&out)
}

// Positive reports whether an action is a positive engagement for
// evaluation.
func Positive(action string) bool { return action == "play" || action == "click" }

// Evaluate replays the training part of the log into every system, waits
// until each serves a model of all of it, then asks each system (and a
// popularity baseline computed from the training part) for every evaluated
// future engagement and scores the answers. It returns, per system, per
// task, the summary.
func Evaluate(ctx context.Context, o EvalOptions) (map[string]map[string]Summary, error) {
	cut := int(float64(len(o.Events)) * o.Cut)
	train, test := o.Events[:cut], o.Events[cut:]
	recs, err := EventRecords(train)
	if err != nil {
		return nil, err
	}
	for _, s := range o.Systems {
		if _, err := Produce(ctx, ProduceOptions{Client: stream.ClientOptions{Brokers: []string{s.Broker}}, Topic: o.Topic, Progress: o.Progress}, recs); err != nil {
			return nil, fmt.Errorf("cannot replay into %s: %w", s.Name, err)
		}
	}
	start := time.Now()
	for _, s := range o.Systems {
		onPoll := func() {
			if o.OnTraining == nil {
				return
			}
			if m, err := TrainerMetrics(ctx, s.API); err == nil {
				o.OnTraining(s.Name, time.Since(start).Seconds(), m)
			}
		}
		if err := WaitTrained(ctx, s.API, s.Token, len(train), 10*time.Minute, onPoll); err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	hist := history(train)
	pop := popularity(train)
	queries := pickQueries(test, o.QueriesPerTask)
	catalog := catalogSize(o.Events)
	out := map[string]map[string]Summary{}
	answers := map[string]map[string][]Query{"popularity": {}}
	for _, s := range o.Systems {
		answers[s.Name] = map[string][]Query{}
	}
	for i, e := range queries {
		rel := map[string]bool{e.ItemID: true}
		excl := hist[e.Context["user_id"]]
		answers["popularity"][e.Canvas] = append(answers["popularity"][e.Canvas], Query{Returned: pop.top(e.Canvas, o.K, excl, e.Context["source_item_id"]), Relevant: rel})
		reqCtx := map[string]string{"time": e.Time.UTC().Format(time.RFC3339Nano)} // as the canvas would, at the event's time
		for k, v := range e.Context {
			reqCtx[k] = v
		}
		for _, s := range o.Systems {
			resp, err := client.New(s.API, nil).WithToken(s.Token).Recommend(ctx, &serve.Request{UseCase: e.Canvas, Context: reqCtx, K: o.K, Exclude: excl})
			if err != nil {
				return nil, fmt.Errorf("%s: cannot query %s: %w", s.Name, e.Canvas, err)
			}
			ids := make([]string, len(resp.Items))
			for i, it := range resp.Items {
				ids[i] = it.ID
			}
			answers[s.Name][e.Canvas] = append(answers[s.Name][e.Canvas], Query{Returned: ids, Relevant: rel})
		}
		if o.Progress != nil && i%100 == 0 {
			fmt.Fprintf(o.Progress, "\rqueries %d/%d   ", i, len(queries))
		}
	}
	for sys, byTask := range answers {
		out[sys] = map[string]Summary{}
		for task, qs := range byTask {
			out[sys][task] = Summarize(qs, o.K, catalog)
		}
	}
	return out, nil
}

// WaitTrained polls a system until it has consumed at least events events
// and its served model has learned every example ingest produced from them
// (asking the model with token when it is not empty).
func WaitTrained(ctx context.Context, api, token string, events int, timeout time.Duration, onPoll func()) error {
	deadline := time.Now().Add(timeout)
	for {
		if onPoll != nil {
			onPoll()
		}
		m, err := Metrics(ctx, api)
		if err == nil {
			examples := 0.0
			for name, v := range m {
				if strings.HasPrefix(name, "unirec_ingest_examples_total{") {
					examples += v
				}
			}
			model, aerr := client.New(api, nil).WithToken(token).Model(ctx)
			if aerr == nil && m["unirec_ingest_events_consumed_total"] >= float64(events) && model.Applied > 0 && float64(model.Applied) >= examples {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("model did not catch up with %d events within %s", events, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Metrics reads a system's /metrics into name -> value.
func Metrics(ctx context.Context, api string) (map[string]float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", api+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot read metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.LastIndexByte(line, ' '); i > 0 && !strings.HasPrefix(line, "#") {
			var v float64
			fmt.Sscan(line[i+1:], &v)
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// history is every user's positively engaged items in the training part,
// excluded from that user's evaluated answers (they are not news).
func history(train []ingest.Event) map[string][]string {
	seen := map[string]map[string]bool{}
	out := map[string][]string{}
	for _, e := range train {
		u := e.Context["user_id"]
		if !Positive(e.Action) || u == "" {
			continue
		}
		if seen[u] == nil {
			seen[u] = map[string]bool{}
		}
		if !seen[u][e.ItemID] {
			seen[u][e.ItemID] = true
			out[u] = append(out[u], e.ItemID)
		}
	}
	return out
}

// pickQueries spreads at most n positive engagements per task evenly over
// the test period.
func pickQueries(test []ingest.Event, n int) []ingest.Event {
	byTask := map[string][]ingest.Event{}
	for _, e := range test {
		if Positive(e.Action) {
			byTask[e.Canvas] = append(byTask[e.Canvas], e)
		}
	}
	var out []ingest.Event
	tasks := make([]string, 0, len(byTask))
	for t := range byTask {
		tasks = append(tasks, t)
	}
	sort.Strings(tasks)
	for _, t := range tasks {
		evs := byTask[t]
		step := max(1, len(evs)/max(n, 1))
		for i := 0; i < len(evs) && i/step < n; i += step {
			out = append(out, evs[i])
		}
	}
	return out
}

func catalogSize(evs []ingest.Event) int {
	items := map[string]bool{}
	for _, e := range evs {
		items[e.ItemID] = true
	}
	return len(items)
}

// popCounts is the popularity baseline: positive engagements per task.
type popCounts map[string]map[string]int

func popularity(train []ingest.Event) popCounts {
	p := popCounts{}
	for _, e := range train {
		if !Positive(e.Action) {
			continue
		}
		if p[e.Canvas] == nil {
			p[e.Canvas] = map[string]int{}
		}
		p[e.Canvas][e.ItemID]++
	}
	return p
}

func (p popCounts) top(task string, k int, exclude []string, source string) []string {
	ex := map[string]bool{source: true}
	for _, id := range exclude {
		ex[id] = true
	}
	type kv struct {
		id string
		n  int
	}
	var all []kv
	for id, n := range p[task] {
		if !ex[id] {
			all = append(all, kv{id, n})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].n != all[j].n {
			return all[i].n > all[j].n
		}
		return all[i].id < all[j].id
	})
	out := make([]string, 0, k)
	for i := 0; i < len(all) && i < k; i++ {
		out = append(out, all[i].id)
	}
	return out
}
