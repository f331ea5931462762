package snapshot

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/unirec/unirec/stream"
)

// ListOptions configures List.
type ListOptions struct {
	Client stream.ClientOptions
	Topic  string
	// Key checks signatures; nil reports signed records as unchecked and
	// accepts unsigned ones, as a replica without a key does.
	Key []byte
	// ModelID, when set, flags records of another model, as replicas
	// refuse them.
	ModelID string
	// MaxBytes bounds one snapshot's buffered chunks, as replicas do (0:
	// DefaultMaxBytes).
	MaxBytes int
}

// Entry is one snapshot (its manifest) or control record on the topic, as
// a replica following the topic would judge it.
type Entry struct {
	Offset        int64     `json:"offset"`
	Kind          string    `json:"kind"` // KindFull, KindDelta, EntryControl or EntryIncomplete
	Version       int64     `json:"version,omitempty"`
	BaseVersion   int64     `json:"base_version,omitempty"`
	Encoding      Encoding  `json:"encoding,omitempty"`
	Bytes         int       `json:"bytes,omitempty"`
	Rows          int       `json:"rows,omitempty"`
	Deleted       int       `json:"deleted,omitempty"`
	TotalRows     int       `json:"total_rows,omitempty"`
	Chunks        int       `json:"chunks,omitempty"`         // as the manifest says
	ChunksPresent int       `json:"chunks_present,omitempty"` // CRC-valid chunks found before it
	Watermark     time.Time `json:"watermark,omitzero"`
	Created       time.Time `json:"created,omitzero"`
	Action        string    `json:"action,omitempty"` // control records
	Signature     string    `json:"signature"`        // Signature*
	// Usable is false when a replica would refuse it: corrupt, unsigned or
	// forged while a key is configured, of another model, a delta off the
	// chain, or a replay (a version not above one before it, a control
	// record not newer than one before it). Whether a control record is
	// older than a replica's max age depends on when it is read: not judged.
	Usable   bool     `json:"usable"`
	Problems []string `json:"problems,omitempty"`
}

// The kinds of Entry besides KindFull and KindDelta.
const (
	EntryControl    = "control"
	EntryIncomplete = "incomplete" // chunks at the end of the topic with no manifest
)

// List reads the whole snapshots topic (committed records) and returns
// every snapshot and control record in offset order, with what is wrong
// with each: chunk CRCs, chunk counts, payload checksum, signature, and the
// chain (a delta is usable only on the newest usable snapshot before it,
// and after a break only a full restarts the chain, as in Subscribe). It
// does not decode payloads. Bad records are reported, not errors.
func List(ctx context.Context, opts ListOptions) ([]Entry, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	l := &lister{key: opts.Key, model: opts.ModelID, cur: assembly{limit: opts.MaxBytes}}
	if err := stream.ReadPartition(ctx, opts.Client, opts.Topic, 0, l.record); err != nil {
		return nil, fmt.Errorf("cannot list snapshots: %w", err)
	}
	if l.cur.have > 0 || len(l.problems) > 0 {
		l.out = append(l.out, Entry{Offset: l.lastChunk, Kind: EntryIncomplete, Version: l.cur.version, ChunksPresent: l.cur.have,
			Signature: SignatureUnsigned, Problems: append(l.problems, "chunks without a manifest")})
	}
	return l.out, nil
}

// lister is the state of List: the snapshot being assembled, the problems
// of its chunks, the head of the usable chain, the newest usable version
// and the newest usable control record's creation time.
type lister struct {
	key       []byte
	model     string
	cur       assembly
	problems  []string
	lastChunk int64
	head, top int64
	lastCtl   time.Time
	out       []Entry
}

// foreign says why a record of model id is refused, or "".
func (l *lister) foreign(id string) string {
	if l.model != "" && id != l.model {
		return fmt.Sprintf("model %q, replicas serve %q", id, l.model)
	}
	return ""
}

func (l *lister) record(r *kgo.Record) error {
	switch string(r.Key) {
	case controlKey:
		l.out = append(l.out, l.control(r))
	case manifestKey:
		l.out = append(l.out, l.manifest(r))
	default:
		l.lastChunk = r.Offset
		if _, _, err := l.cur.add(r, nil); err != nil {
			l.problems = append(l.problems, fmt.Sprintf("offset %d: %v", r.Offset, err))
		}
	}
	return nil
}

// accepted says whether a replica with l's key takes a record signed so.
func (l *lister) accepted(sig string) bool {
	return sig == SignatureValid || (l.key == nil && (sig == SignatureUnsigned || sig == SignatureUnchecked))
}

func (l *lister) control(r *kgo.Record) Entry {
	e := Entry{Offset: r.Offset, Kind: EntryControl, Signature: signature(l.key, r), Created: r.Timestamp.UTC()}
	var c Control
	if err := json.Unmarshal(r.Value, &c); err != nil {
		e.Problems = append(e.Problems, fmt.Sprintf("cannot decode control record: %v", err))
	} else if err := c.Validate(); err != nil {
		e.Problems = append(e.Problems, err.Error())
	}
	e.Action, e.Version = c.Action, c.Version
	if !c.Created.IsZero() {
		e.Created = c.Created
	}
	if !l.accepted(e.Signature) {
		e.Problems = append(e.Problems, "signature "+e.Signature)
	}
	if why := l.foreign(c.ModelID); why != "" {
		e.Problems = append(e.Problems, why)
	}
	if len(e.Problems) == 0 && !c.Created.After(l.lastCtl) {
		e.Problems = append(e.Problems, fmt.Sprintf("replayed: not newer than the control record of %s", l.lastCtl.Format(time.RFC3339Nano)))
	}
	e.Usable = len(e.Problems) == 0
	if e.Usable {
		l.lastCtl = c.Created
	}
	return e
}

// manifest ends one snapshot: it checks its chunks and checksum (through
// assembly.add and verifyChecksum, as a subscriber does), its signature,
// and whether it continues the usable chain.
func (l *lister) manifest(r *kgo.Record) Entry {
	e := Entry{Offset: r.Offset, Kind: "?", Signature: signature(l.key, r), ChunksPresent: l.cur.have, Problems: l.problems}
	l.problems = nil
	var m Manifest
	if err := json.Unmarshal(r.Value, &m); err == nil {
		e.Kind, e.Version, e.BaseVersion, e.Encoding = m.Kind, m.Version, m.BaseVersion, m.Encoding
		e.Bytes, e.Rows, e.Deleted, e.TotalRows, e.Chunks = m.Bytes, m.Rows, m.Deleted, m.TotalRows, m.Chunks
		e.Watermark, e.Created = m.Watermark, m.Created
	}
	if !l.accepted(e.Signature) {
		e.Problems = append(e.Problems, "signature "+e.Signature)
	}
	if why := l.foreign(m.ModelID); why != "" {
		e.Problems = append(e.Problems, why)
	}
	got, payload, err := l.cur.add(r, nil)
	if err != nil {
		e.Problems = append(e.Problems, err.Error())
	} else if err := verifyChecksum(got, payload); err != nil {
		e.Problems = append(e.Problems, err.Error())
		l.head = 0 // a subscriber fails it while decoding: the chain breaks
	}
	if len(e.Problems) > 0 {
		return e
	}
	if fullOfHead(l.head, l.top, &m) {
		e.Usable = true // a cold replica may start here
		return e
	}
	if m.Version <= l.top {
		e.Problems = append(e.Problems, fmt.Sprintf("replayed: version %d is not above version %d before it", m.Version, l.top))
		return e
	}
	if !continues(l.head, &m) {
		e.Problems = append(e.Problems, l.offChain(&m))
		l.head = 0
		return e
	}
	e.Usable, l.head, l.top = true, m.Version, m.Version
	return e
}

func (l *lister) offChain(m *Manifest) string {
	if l.head == 0 {
		return fmt.Sprintf("delta on base %d, but the chain is broken before it: replicas wait for the next full snapshot", m.BaseVersion)
	}
	return fmt.Sprintf("delta on base %d, but the newest usable snapshot before it is version %d", m.BaseVersion, l.head)
}

// WriteTable writes entries as the table `unirec snapshot list` prints:
// one line per entry, UNUSABLE ones with their problems.
func WriteTable(w io.Writer, entries []Entry) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OFFSET\tKIND\tVERSION\tBASE\tENCODING\tBYTES\tROWS/TOTAL\tCHUNKS\tCREATED\tSIGNATURE\tSTATUS")
	for _, e := range entries {
		status := "ok"
		if !e.Usable {
			status = "UNUSABLE: " + strings.Join(e.Problems, "; ")
		}
		kind, base, rows, chunks := e.Kind, "-", "-", "-"
		if e.Kind == EntryControl {
			kind = "control " + e.Action
		} else {
			rows, chunks = fmt.Sprintf("%d/%d", e.Rows, e.TotalRows), fmt.Sprintf("%d/%d", e.ChunksPresent, e.Chunks)
		}
		if e.Kind == KindDelta {
			base = fmt.Sprint(e.BaseVersion)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", e.Offset, kind, e.Version, base, orDash(string(e.Encoding)),
			e.Bytes, rows, chunks, e.Created.Format(time.RFC3339), e.Signature, status)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
