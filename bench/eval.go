package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
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
	// Reference names the system compared with every other one (paired
	// bootstrap of the recall difference); usually "unified".
	Reference string
	// AUCNegatives is how many random catalog items each evaluated
	// engagement is scored against for the sampled AUC (0: no AUC).
	AUCNegatives int
	Topic        string
	Progress     io.Writer
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

// EvalResult is what Evaluate measured.
type EvalResult struct {
	// Summaries holds, per system (and "popularity"), per task, the
	// quality of its answers.
	Summaries map[string]map[string]Summary
	// Versus holds, per other system, per task, the paired bootstrap
	// difference in recall@K of the reference system minus it.
	Versus map[string]map[string]Interval
}

// Evaluate replays the training part of the log into every system, waits
// until each serves a model of all of it, then asks each system (and a
// popularity baseline computed from the training part) for every evaluated
// future engagement and scores the answers: ranking metrics against the
// whole catalog, and a sampled AUC of the engaged item against
// AUCNegatives random catalog items, ranked through the API's candidates.
func Evaluate(ctx context.Context, o EvalOptions) (EvalResult, error) {
	cut := int(float64(len(o.Events)) * o.Cut)
	train, test := o.Events[:cut], o.Events[cut:]
	if err := o.train(ctx, train); err != nil {
		return EvalResult{}, err
	}
	e := evaluation{o: o, hist: history(train), pop: popularity(train), catalog: catalogIDs(o.Events),
		answers: map[string]map[string][]Query{"popularity": {}}}
	for _, s := range o.Systems {
		e.answers[s.Name] = map[string][]Query{}
	}
	queries := pickQueries(test, o.QueriesPerTask)
	bar := NewProgress(o.Progress, "queries", len(queries))
	for i, ev := range queries {
		if err := e.ask(ctx, i, ev); err != nil {
			return EvalResult{}, err
		}
		bar.Update(i + 1)
	}
	bar.Done(len(queries))
	return e.result(), nil
}

// train replays the training events into every system and waits until
// each serves a model of all of them.
func (o EvalOptions) train(ctx context.Context, train []ingest.Event) error {
	recs, err := EventRecords(train)
	if err != nil {
		return err
	}
	for _, s := range o.Systems {
		if _, err := Produce(ctx, ProduceOptions{Client: stream.Plaintext(s.Broker), Topic: o.Topic, Progress: o.Progress}, recs); err != nil {
			return fmt.Errorf("cannot replay into %s: %w", s.Name, err)
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
		bar := NewProgress(o.Progress, s.Name+" trained", len(train))
		if err := WaitTrained(ctx, s.API, s.Token, len(train), 10*time.Minute, onPoll, bar); err != nil {
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

// evaluation holds the answers of an Evaluate run as they come in.
type evaluation struct {
	o       EvalOptions
	hist    map[string][]string
	pop     popCounts
	catalog []string
	answers map[string]map[string][]Query // system -> task -> queries, in one order for every system
}

// ask asks every system, and the popularity baseline, about the i-th
// evaluated engagement.
func (e *evaluation) ask(ctx context.Context, i int, ev ingest.Event) error {
	rel := map[string]bool{ev.ItemID: true}
	excl := e.hist[ev.Context["user_id"]]
	negs := e.negatives(i, ev, excl)
	pq := Query{Returned: e.pop.top(ev.Canvas, e.o.K, excl, ev.Context["source_item_id"]), Relevant: rel}
	if len(negs) > 0 {
		pq.AUC, pq.HasAUC = SampledAUC(e.pop.score(ev.Canvas, ev.ItemID), e.pop.scores(ev.Canvas, negs)), true
	}
	e.answers["popularity"][ev.Canvas] = append(e.answers["popularity"][ev.Canvas], pq)
	reqCtx := map[string]string{"time": ev.Time.UTC().Format(time.RFC3339Nano)} // as the canvas would, at the event's time
	for k, v := range ev.Context {
		reqCtx[k] = v
	}
	for _, s := range e.o.Systems {
		c := client.New(s.API, nil).WithToken(s.Token)
		resp, err := c.Recommend(ctx, &serve.Request{UseCase: ev.Canvas, Context: reqCtx, K: e.o.K, Exclude: excl})
		if err != nil {
			return fmt.Errorf("%s: cannot query %s: %w", s.Name, ev.Canvas, err)
		}
		q := Query{Returned: itemIDs(resp.Items), Relevant: rel}
		if len(negs) > 0 {
			if q.AUC, err = systemAUC(ctx, c, ev.Canvas, reqCtx, ev.ItemID, negs); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			q.HasAUC = true
		}
		e.answers[s.Name][ev.Canvas] = append(e.answers[s.Name][ev.Canvas], q)
	}
	return nil
}

// negatives draws the AUC negatives of the i-th query: distinct catalog
// items other than the engaged one, the source item and the user's
// history, deterministically per query.
func (e *evaluation) negatives(i int, ev ingest.Event, excl []string) []string {
	n := e.o.AUCNegatives
	if n <= 0 || len(e.catalog) <= n+len(excl)+2 {
		return nil
	}
	skip := map[string]bool{ev.ItemID: true, ev.Context["source_item_id"]: true}
	for _, id := range excl {
		skip[id] = true
	}
	r := rand.New(rand.NewPCG(uint64(i), 7))
	out := make([]string, 0, n)
	for len(out) < n {
		id := e.catalog[r.IntN(len(e.catalog))]
		if !skip[id] {
			skip[id] = true
			out = append(out, id)
		}
	}
	return out
}

// systemAUC ranks the engaged item and the negatives through the API's
// candidates and returns the sampled AUC of the scores it answers; an item
// the answer leaves out scores lowest.
func systemAUC(ctx context.Context, c *client.Client, useCase string, reqCtx map[string]string, pos string, negs []string) (float64, error) {
	ids := append([]string{pos}, negs...)
	resp, err := c.Recommend(ctx, &serve.Request{UseCase: useCase, Context: reqCtx, K: len(ids), Candidates: &serve.Candidates{IDs: ids}})
	if err != nil {
		return 0, fmt.Errorf("cannot score the AUC candidates of %s: %w", useCase, err)
	}
	score := map[string]float64{}
	for _, it := range resp.Items {
		score[it.ID] = it.Score
	}
	of := func(id string) float64 {
		if v, ok := score[id]; ok {
			return v
		}
		return math.Inf(-1)
	}
	ns := make([]float64, len(negs))
	for i, id := range negs {
		ns[i] = of(id)
	}
	return SampledAUC(of(pos), ns), nil
}

func itemIDs(items []serve.Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// result summarises the answers and compares the reference system with
// every other one, query by query.
func (e *evaluation) result() EvalResult {
	res := EvalResult{Summaries: map[string]map[string]Summary{}, Versus: map[string]map[string]Interval{}}
	for sys, byTask := range e.answers {
		res.Summaries[sys] = map[string]Summary{}
		for task, qs := range byTask {
			res.Summaries[sys][task] = Summarize(qs, e.o.K, len(e.catalog))
		}
	}
	ref := e.answers[e.o.Reference]
	if ref == nil {
		return res
	}
	for sys, byTask := range e.answers {
		if sys == e.o.Reference {
			continue
		}
		res.Versus[sys] = map[string]Interval{}
		for task, qs := range byTask {
			res.Versus[sys][task] = PairedRecallDifference(ref[task], qs, e.o.K)
		}
	}
	return res
}

// WaitTrained polls a system until it has consumed at least events events
// and its served model has learned every example ingest produced from them
// (asking the model with token when it is not empty); bar shows the events
// consumed.
func WaitTrained(ctx context.Context, api, token string, events int, timeout time.Duration, onPoll func(), bar *Progress) error {
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
			consumed := m["unirec_ingest_events_consumed_total"]
			bar.Update(min(int(consumed), events))
			model, aerr := client.New(api, nil).WithToken(token).Model(ctx)
			if aerr == nil && consumed >= float64(events) && model.Applied > 0 && float64(model.Applied) >= examples {
				bar.Done(events)
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

// catalogIDs is every item of the log, sorted.
func catalogIDs(evs []ingest.Event) []string {
	items := map[string]bool{}
	for _, e := range evs {
		items[e.ItemID] = true
	}
	ids := make([]string, 0, len(items))
	for id := range items {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
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

func (p popCounts) score(task, item string) float64 { return float64(p[task][item]) }

func (p popCounts) scores(task string, items []string) []float64 {
	out := make([]float64, len(items))
	for i, id := range items {
		out[i] = p.score(task, id)
	}
	return out
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
