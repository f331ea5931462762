package stream

import (
	"strconv"

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
