// Package stream owns unirec's use of Kafka: topic names and their creation,
// the embedded Kafka-protocol broker, client options, the exactly-once
// consume-transform-produce loop, and the wire codecs of the records that
// travel between stages (examples, dead letters).
//
// It never interprets events or trains anything: stages plug their logic in
// through small function types and get records in and out.
package stream
