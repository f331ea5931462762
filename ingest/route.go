package ingest

// Routing: the join and dedupe state of a request lives in one partition of
// the events topic, the one Kafka's default partitioner (murmur2, as the
// Java client and franz-go's StickyKeyPartitioner(nil) choose) gives its
// routing key. An event read from another partition (unkeyed, keyed by
// something else, another partitioner) is produced to that partition of the
// repartition topic in the same transaction as its offset, and handled
// there, exactly once.

// routingKey is the key an event's partition is chosen by: its request id,
// else its user id, else its event id (so that a duplicate always meets
// its original).
func routingKey(e *Event) string {
	if e.RequestID != "" {
		return e.RequestID
	}
	if u := e.Context["user_id"]; u != "" {
		return u
	}
	return e.EventID
}

// keyPartition is the partition of n that Kafka's default partitioner
// gives key: murmur2, high bit masked, modulo n.
func keyPartition(key string, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is Kafka's murmur2 hash (Utils.murmur2 in the Java client) of a
// string, without converting it to bytes.
func murmur2(b string) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := uint32(b[3])<<24 | uint32(b[2])<<16 | uint32(b[1])<<8 | uint32(b[0])
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
