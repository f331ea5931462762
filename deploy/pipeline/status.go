package pipeline

import (
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/serve"
	"github.com/unirec/unirec/stream"
)

// statusPage is the operator's view: plain HTML and a little JavaScript
// that reads /metrics, /v1/status, /v1/model and /v1/trainer/metrics.
//
//go:embed status.html
var statusPage []byte

// Status is the answer of GET /v1/status: what /metrics cannot say.
type Status struct {
	Role        string             `json:"role"`
	Started     time.Time          `json:"started"`
	Brokers     []string           `json:"brokers"`
	Topics      map[string]int64   `json:"topic_end_offsets"`
	Lag         []PartitionLag     `json:"lag"`
	DeadLetters []RecentDeadLetter `json:"dead_letters"`
	// DeadLetterValuesHidden says the dead letters' original bytes (user
	// data) were left out: a token is configured and the request did not
	// bear the API or admin token.
	DeadLetterValuesHidden bool `json:"dead_letter_values_hidden,omitempty"`
	// UseCases is what this process's replica serves per use case (serve
	// and run only).
	UseCases []serve.UseCaseState `json:"use_cases,omitempty"`
	Errors   []string             `json:"errors,omitempty"`
}

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
}

// RecentDeadLetter is one of the newest dead letters.
type RecentDeadLetter struct {
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Detail string    `json:"detail"`
	Source string    `json:"source"`
	Value  string    `json:"value"`
}

// StatusSource gathers Status from the cluster, at most every 2 seconds.
type StatusSource struct {
	cfg     Config
	role    string
	started time.Time
	// tokens are the API and admin tokens; a request bearing neither sees
	// no dead-letter bytes when there is one (or when they cannot be read).
	tokens  [][]byte
	guarded bool
	// Replica, when set, is the process's replica, whose use cases the
	// status shows.
	Replica *serve.Replica

	mu     sync.Mutex
	cached *Status
	at     time.Time
}

// NewStatusSource returns the status of a process of cfg (its secrets
// loaded) in role.
func NewStatusSource(cfg Config, role string) *StatusSource {
	s := &StatusSource{cfg: cfg, role: role, started: time.Now().UTC()}
	// a token configured but not loaded hides the bytes from everyone
	sv := cfg.Serve
	s.guarded = sv.APITokenFile != "" || sv.APITokenEnv != "" || sv.AdminTokenFile != "" || sv.AdminTokenEnv != ""
	for _, tok := range [][]byte{cfg.Secrets.APIToken, cfg.Secrets.AdminToken} {
		if tok != nil {
			s.tokens, s.guarded = append(s.tokens, tok), true
		}
	}
	return s
}

// Register mounts the page at / and the JSON at /v1/status.
func (s *StatusSource) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(statusPage)
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.forRequest(r))
	})
}

// forRequest is the status as r may see it: without dead-letter bytes
// unless r bears a configured token, and with the replica's use cases now.
func (s *StatusSource) forRequest(r *http.Request) *Status {
	st := *s.Get(r.Context())
	if s.Replica != nil {
		st.UseCases = s.Replica.UseCaseStates()
	}
	if s.guarded && !slices.ContainsFunc(s.tokens, func(tok []byte) bool { return serve.HasBearer(r, tok) }) {
		st.DeadLetters = slices.Clone(st.DeadLetters)
		for i := range st.DeadLetters {
			st.DeadLetters[i].Value = ""
		}
		st.DeadLetterValuesHidden = true
	}
	return &st
}

// Get is the status now, or at most 2 seconds old.
func (s *StatusSource) Get(ctx context.Context) *Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cached != nil && time.Since(s.at) < 2*time.Second {
		return s.cached
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st := &Status{Role: s.role, Started: s.started, Brokers: s.cfg.Kafka.Brokers, Topics: map[string]int64{}}
	cl, err := kgo.NewClient(s.cfg.Kafka.Opts()...)
	if err != nil {
		st.Errors = append(st.Errors, err.Error())
		return st
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	s.topicEnds(ctx, adm, st)
	s.groupLag(ctx, adm, st)
	st.DeadLetters = recentDeadLetters(ctx, s.cfg, adm, 20)
	s.cached, s.at = st, time.Now()
	return st
}

func (s *StatusSource) topicEnds(ctx context.Context, adm *kadm.Client, st *Status) {
	t := s.cfg.Topics
	ends, err := adm.ListEndOffsets(ctx, t.Events, t.Examples, t.DeadLetters, t.Snapshots)
	if err != nil {
		st.Errors = append(st.Errors, "cannot list end offsets: "+err.Error())
		return
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			st.Topics[o.Topic] += o.Offset
		}
	})
}

func (s *StatusSource) groupLag(ctx context.Context, adm *kadm.Client, st *Status) {
	lags, err := adm.Lag(ctx, s.cfg.Ingest.Group)
	if err != nil {
		st.Errors = append(st.Errors, "cannot compute consumer lag: "+err.Error())
		return
	}
	for _, gl := range lags.Sorted() {
		for _, l := range gl.Lag.Sorted() {
			st.Lag = append(st.Lag, PartitionLag{Group: gl.Group, Topic: l.Topic, Partition: l.Partition, Lag: l.Lag})
		}
	}
}

// recentDeadLetters reads the last n dead letters of every partition.
func recentDeadLetters(ctx context.Context, cfg Config, adm *kadm.Client, n int64) []RecentDeadLetter {
	ends, err := adm.ListEndOffsets(ctx, cfg.Topics.DeadLetters)
	if err != nil {
		return nil
	}
	parts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{} // partition -> end offset still to reach
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			parts[o.Partition] = kgo.NewOffset().At(max(o.Offset-n, 0))
			remaining[o.Partition] = o.Offset
		}
	})
	out := []RecentDeadLetter{}
	if len(parts) == 0 {
		return out
	}
	cl, err := kgo.NewClient(append(cfg.Kafka.Opts(), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.Topics.DeadLetters: parts}))...)
	if err != nil {
		return nil
	}
	defer cl.Close()
	for len(remaining) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if r.Offset+1 >= remaining[r.Partition] {
				delete(remaining, r.Partition)
			}
			if r.Attrs.IsControl() {
				return
			}
			v := string(r.Value)
			if len(v) > 300 {
				v = v[:300] + "..."
			}
			out = append(out, RecentDeadLetter{Time: r.Timestamp.UTC(), Reason: stream.Header(r, stream.HeaderReason),
				Detail: stream.Header(r, stream.HeaderDetail), Source: stream.Header(r, stream.HeaderSource), Value: v})
		})
	}
	return out
}
