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
	// Cut is the fraction of events (in time order) before the test
	// period: the test period is the rest of the log.
	Cut float64
	// ValidationCut (< Cut) starts the validation period, which ends at
	// Cut.
	ValidationCut float64
	// Period is PeriodTest (train on events before Cut, ask the test
	// period) or PeriodValidation (train on events before ValidationCut,
	// ask the validation period): hyperparameters are chosen on the
	// validation period, the test period is reported once.
	Period string
	// Live also asks every system a second time while it keeps learning
	// the evaluated period prequentially: the period's events are produced
	// in LiveChunks time-ordered chunks, and the queries of a chunk are
	// asked once the system has learned every earlier chunk and before the
	// chunk itself is produced. Those answers are system+" live"; the
	// first ones are the model frozen at the cut. Baselines stay frozen.
	// With Live every query (every system, baseline and pass) excludes the
	// user's positives of the earlier chunks too, not only the training
	// history: a live model has learned them and would otherwise spend its
	// answer on items the user has already seen.
	Live       bool
	LiveChunks int
	// ALS configures the ALS baseline.
	ALS ALSOptions
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
	// difference in recall@K of the reference system minus it; VersusNDCG
	// the same for NDCG@K.
	Versus     map[string]map[string]Interval
	VersusNDCG map[string]map[string]Interval
	// Freshness holds, per system, per task, live minus frozen recall@K
	// (paired bootstrap; Live runs only); FreshnessNDCG the same for NDCG@K.
	Freshness     map[string]map[string]Interval
	FreshnessNDCG map[string]map[string]Interval
	// Train and Asked are the events trained on before the cut and the
	// events of the evaluated period.
	Train, Asked int
}

// Evaluation periods.
const (
	PeriodTest       = "test"
	PeriodValidation = "validation"
)

// LiveSuffix names the answers of a system that keeps learning.
const LiveSuffix = " live"

// split returns where training ends and where the evaluated period ends.
func (o EvalOptions) split() (int, int) {
	n := len(o.Events)
	if o.Period == PeriodValidation {
		return int(float64(n) * o.ValidationCut), int(float64(n) * o.Cut)
	}
	return int(float64(n) * o.Cut), n
}

// Evaluate replays the training part of the log into every system, waits
// until each serves a model of all of it, then asks each system (and the
// baselines, built from the same training events) for every evaluated
// engagement of the period and scores the answers: ranking metrics against
// the whole catalog, and a sampled AUC of the engaged item against
// AUCNegatives random catalog items, ranked through the API's candidates.
// With Live it then asks every system again while it learns the period.
func Evaluate(ctx context.Context, o EvalOptions) (EvalResult, error) {
	trainEnd, periodEnd := o.split()
	train, period := o.Events[:trainEnd], o.Events[trainEnd:periodEnd]
	if err := o.train(ctx, train); err != nil {
		return EvalResult{}, err
	}
	e := evaluation{o: o, hist: history(train), catalog: catalogIDs(o.Events),
		baselines: NewBaselines(train, o.ALS), answers: map[string]map[string][]Query{}}
	for _, b := range e.baselines {
		e.answers[b.Name()] = map[string][]Query{}
	}
	for _, s := range o.Systems {
		e.answers[s.Name] = map[string][]Query{}
		if o.Live {
			e.answers[s.Name+LiveSuffix] = map[string][]Query{}
		}
	}
	picked := pickQueries(period, o.QueriesPerTask)
	e.excl = make([][]string, len(picked))
	for i, at := range picked {
		u := period[at].Context["user_id"]
		e.excl[i] = e.hist[u]
		if o.Live {
			e.excl[i] = seenBefore(e.hist[u], u, period[:chunkStart(at, len(period), o.LiveChunks)])
		}
	}
	bar := NewProgress(o.Progress, "queries", len(picked))
	for i, at := range picked {
		if err := e.askBaselines(i, period[at]); err != nil {
			return EvalResult{}, err
		}
		if err := e.askSystems(ctx, i, period[at], ""); err != nil {
			return EvalResult{}, err
		}
		bar.Update(i + 1)
	}
	bar.Done(len(picked))
	if o.Live {
		if err := e.live(ctx, len(train), period, picked); err != nil {
			return EvalResult{}, err
		}
	}
	res := e.result()
	res.Train, res.Asked = len(train), len(period)
	return res, nil
}

// live asks every system the picked queries again while it learns the
// period: chunk by chunk, each chunk's queries before its events.
func (e *evaluation) live(ctx context.Context, trained int, period []ingest.Event, picked []int) error {
	chunks := max(1, e.o.LiveChunks)
	bar := NewProgress(e.o.Progress, "live queries", len(picked))
	q := 0
	for c := range chunks {
		lo, hi := c*len(period)/chunks, (c+1)*len(period)/chunks
		if c > 0 {
			for _, s := range e.o.Systems {
				if err := WaitTrained(ctx, s.API, s.Token, trained+lo, 10*time.Minute, nil, nil); err != nil {
					return fmt.Errorf("%s live: %w", s.Name, err)
				}
			}
		}
		for ; q < len(picked) && picked[q] < hi; q++ {
			if err := e.askSystems(ctx, q, period[picked[q]], LiveSuffix); err != nil {
				return err
			}
			bar.Update(q + 1)
		}
		if err := e.o.produce(ctx, period[lo:hi], nil); err != nil {
			return err
		}
	}
	bar.Done(len(picked))
	return nil
}

// train replays the training events into every system and waits until
// each serves a model of all of them.
func (o EvalOptions) train(ctx context.Context, train []ingest.Event) error {
	if err := o.produce(ctx, train, o.Progress); err != nil {
		return err
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

// produce replays events into every system.
func (o EvalOptions) produce(ctx context.Context, evs []ingest.Event, progress io.Writer) error {
	recs, err := EventRecords(evs)
	if err != nil {
		return err
	}
	for _, s := range o.Systems {
		if _, err := Produce(ctx, ProduceOptions{Client: stream.Plaintext(s.Broker), Topic: o.Topic, Progress: progress}, recs); err != nil {
			return fmt.Errorf("cannot replay into %s: %w", s.Name, err)
		}
	}
	return nil
}

// evaluation holds the answers of an Evaluate run as they come in.
type evaluation struct {
	o         EvalOptions
	hist      map[string][]string
	catalog   []string
	baselines []Baseline
	// excl is each query's exclude: the user's positively engaged items of
	// the training events and, with Live, of the chunks before the query's
	// (what the product knows the user has seen when the live model is
	// asked), the same for every system, baseline and pass.
	excl    [][]string
	answers map[string]map[string][]Query // system -> task -> queries, in one order for every system
}

// chunkStart is where the live chunk holding index at of a period of n
// events starts.
func chunkStart(at, n, chunks int) int {
	chunks = max(1, chunks)
	lo := 0
	for c := range chunks {
		if c*n/chunks > at {
			break
		}
		lo = c * n / chunks
	}
	return lo
}

// seenBefore is hist plus the user's positively engaged items of evs, each
// once.
func seenBefore(hist []string, user string, evs []ingest.Event) []string {
	out := hist
	seen := map[string]bool{}
	for _, id := range hist {
		seen[id] = true
	}
	for _, e := range evs {
		if Positive(e.Action) && e.Context["user_id"] == user && !seen[e.ItemID] {
			if len(out) == len(hist) {
				out = append([]string(nil), hist...)
			}
			seen[e.ItemID] = true
			out = append(out, e.ItemID)
		}
	}
	return out
}

// askBaselines asks every baseline about the i-th evaluated engagement.
func (e *evaluation) askBaselines(i int, ev ingest.Event) error {
	excl := e.excl[i]
	negs := e.negatives(i, ev, excl)
	skip := map[string]bool{ev.Context["source_item_id"]: true}
	for _, id := range excl {
		skip[id] = true
	}
	for _, b := range e.baselines {
		top, scores := b.Answer(BaselineQuery{Event: ev, K: e.o.K, Exclude: skip, Candidates: append([]string{ev.ItemID}, negs...)})
		q := Query{Returned: top, Relevant: map[string]bool{ev.ItemID: true}}
		if len(negs) > 0 {
			q.AUC, q.HasAUC = SampledAUC(scores[0], scores[1:]), true
		}
		e.answers[b.Name()][ev.Canvas] = append(e.answers[b.Name()][ev.Canvas], q)
	}
	return nil
}

// askSystems asks every system about the i-th evaluated engagement and
// files the answers under the system's name plus suffix.
func (e *evaluation) askSystems(ctx context.Context, i int, ev ingest.Event, suffix string) error {
	rel := map[string]bool{ev.ItemID: true}
	excl := e.excl[i]
	negs := e.negatives(i, ev, excl)
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
		e.answers[s.Name+suffix][ev.Canvas] = append(e.answers[s.Name+suffix][ev.Canvas], q)
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
// every other one, and each live system with itself frozen, query by query.
func (e *evaluation) result() EvalResult {
	res := EvalResult{Summaries: map[string]map[string]Summary{},
		Versus: map[string]map[string]Interval{}, VersusNDCG: map[string]map[string]Interval{},
		Freshness: map[string]map[string]Interval{}, FreshnessNDCG: map[string]map[string]Interval{}}
	for sys, byTask := range e.answers {
		res.Summaries[sys] = map[string]Summary{}
		for task, qs := range byTask {
			res.Summaries[sys][task] = Summarize(qs, e.o.K, len(e.catalog))
		}
	}
	paired := func(a, b map[string][]Query, recall, ndcg map[string]Interval) {
		for task, qs := range b {
			recall[task] = PairedRecallDifference(a[task], qs, e.o.K)
			ndcg[task] = PairedNDCGDifference(a[task], qs, e.o.K)
		}
	}
	if ref := e.answers[e.o.Reference]; ref != nil {
		for sys, byTask := range e.answers {
			if sys == e.o.Reference || strings.HasSuffix(sys, LiveSuffix) {
				continue
			}
			res.Versus[sys], res.VersusNDCG[sys] = map[string]Interval{}, map[string]Interval{}
			paired(ref, byTask, res.Versus[sys], res.VersusNDCG[sys])
		}
	}
	for _, s := range e.o.Systems {
		if live := e.answers[s.Name+LiveSuffix]; live != nil {
			res.Freshness[s.Name], res.FreshnessNDCG[s.Name] = map[string]Interval{}, map[string]Interval{}
			paired(live, e.answers[s.Name], res.Freshness[s.Name], res.FreshnessNDCG[s.Name])
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
// the period and returns their indexes in it, in time order.
func pickQueries(period []ingest.Event, n int) []int {
	byTask := map[string][]int{}
	for i, e := range period {
		if Positive(e.Action) {
			byTask[e.Canvas] = append(byTask[e.Canvas], i)
		}
	}
	var out []int
	for _, idx := range byTask {
		step := max(1, len(idx)/max(n, 1))
		for i := 0; i < len(idx) && i/step < n; i += step {
			out = append(out, idx[i])
		}
	}
	sort.Ints(out)
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
