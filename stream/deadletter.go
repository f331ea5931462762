package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Dead-letter record headers. The record value is the original event bytes,
// unchanged, so a fixed event can be re-injected as it was.
const (
	HeaderReason = "unirec.reason" // machine-readable reason, e.g. "bad_json"
	HeaderDetail = "unirec.detail" // human-readable explanation
	HeaderSource = "unirec.source" // topic/partition/offset of the original
)

// DeadLetter builds the dead-letter record for src.
func DeadLetter(topic string, src *kgo.Record, reason, detail string) *kgo.Record {
	source := src.Topic + "/" + strconv.Itoa(int(src.Partition)) + "/" + strconv.FormatInt(src.Offset, 10)
	return &kgo.Record{
		Topic: topic,
		Key:   src.Key,
		Value: src.Value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderReason, Value: []byte(reason)},
			{Key: HeaderDetail, Value: []byte(detail)},
			{Key: HeaderSource, Value: []byte(source)},
		},
	}
}

// Header returns the value of the named header of r, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// DeadLetterLine is one dead letter as `unirec dlq inspect` writes it: one
// JSON object per line; `unirec dlq replay` reads the same lines back, so
// an operator can fix the event in place and re-inject it.
type DeadLetterLine struct {
	Source string          `json:"source"`
	Reason string          `json:"reason"`
	Detail string          `json:"detail"`
	Key    string          `json:"key,omitempty"`
	Event  json.RawMessage `json:"event,omitempty"` // the original bytes when they are JSON
	Raw    string          `json:"raw,omitempty"`   // the original bytes otherwise
}

// InspectDeadLetters writes every dead letter of topic (up to its end at
// the time of the call) with the given reason ("": any) as a JSON line to
// w, and returns how many it wrote.
func InspectDeadLetters(ctx context.Context, copts ClientOptions, topic, reason string, w io.Writer) (int, error) {
	cl, err := kgo.NewClient(copts.Opts()...)
	if err != nil {
		return 0, fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	parts, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("cannot list dead-letter partitions: %w", err)
	}
	enc := json.NewEncoder(w)
	n := 0
	var perr error
	parts.Each(func(o kadm.ListedOffset) {
		if perr != nil || o.Err != nil {
			return
		}
		perr = ReadPartition(ctx, copts, topic, o.Partition, func(r *kgo.Record) error {
			dl := DeadLetterLine{Source: Header(r, HeaderSource), Reason: Header(r, HeaderReason), Detail: Header(r, HeaderDetail), Key: string(r.Key)}
			if reason != "" && dl.Reason != reason {
				return nil
			}
			if json.Valid(r.Value) {
				dl.Event = r.Value
			} else {
				dl.Raw = string(r.Value)
			}
			n++
			return enc.Encode(dl)
		})
	})
	if perr != nil {
		return n, fmt.Errorf("cannot read dead letters: %w", perr)
	}
	return n, nil
}

// ReplayDeadLetters produces the event of every dead-letter line of r
// (named name in errors) to topic, and returns how many it produced.
func ReplayDeadLetters(ctx context.Context, copts ClientOptions, topic string, r io.Reader, name string) (int, error) {
	cl, err := kgo.NewClient(append(copts.Opts(), kgo.DefaultProduceTopic(topic))...)
	if err != nil {
		return 0, fmt.Errorf("cannot create kafka client: %w", err)
	}
	defer cl.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	n := 0
	for line := 1; sc.Scan(); line++ {
		var dl DeadLetterLine
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			return n, fmt.Errorf("%s:%d: not a dead-letter line: %w", name, line, err)
		}
		value := []byte(dl.Event)
		if len(value) == 0 {
			value = []byte(dl.Raw)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(dl.Key), Value: value}).FirstErr(); err != nil {
			return n, fmt.Errorf("%s:%d: cannot produce: %w", name, line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("cannot read %q: %w", name, err)
	}
	return n, nil
}
