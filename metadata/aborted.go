package metadata

// The aborted-transaction index.
//
// When a commit writes an abort marker that ends a producer's transaction
// on a partition, the same etcd transaction records the aborted
// transaction under
//
//	aborted/<topic id>/<partition, 10 digits>/<marker offset, 20 digits>
//
// with its producer ID, first offset, and the partition's last stable
// offset after the marker. A read_committed fetch of [from, upper) needs
// every aborted transaction whose records overlap it: those with a marker
// at or after from and a first offset below upper. Scanning by marker
// offset from `from`, it can stop at the first entry whose stable offset
// is at or past upper: every transaction that began below upper had ended
// by then (Kafka's transaction index works the same way). Retention
// removes entries whose marker is below the log start.

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const prefixAborted = "aborted/"

// abortedKeyLen bounds the length of an aborted-index key below the root.
const abortedKeyLen = len(prefixAborted) + 36 + 1 + 10 + 1 + 20

// AbortedTxn is one aborted transaction of a partition.
type AbortedTxn struct {
	Partition  int32
	ProducerID int64
	// First is the transaction's first offset on the partition, Last its
	// abort marker's offset.
	First, Last int64
	// Stable is the partition's last stable offset after the marker.
	Stable int64
}

type abortedValue struct {
	V          int   `json:"v"`
	ProducerID int64 `json:"producer_id"`
	First      int64 `json:"first"`
	Stable     int64 `json:"stable"`
}

func (a AbortedTxn) value() string {
	return encode(abortedValue{V: 1, ProducerID: a.ProducerID, First: a.First, Stable: a.Stable})
}

func (s *Store) abortedPrefix(topic uuid.UUID, partition int32) string {
	return s.key(prefixAborted, topic.String(), "/", fmt.Sprintf("%010d", partition), "/")
}

func (s *Store) abortedKey(topic uuid.UUID, partition int32, marker int64) string {
	return s.abortedPrefix(topic, partition) + fmt.Sprintf("%020d", marker)
}

// decodeAborted decodes an aborted-index entry of prefix's partition.
func decodeAborted(prefix, key string, partition int32, data []byte) (AbortedTxn, error) {
	last, err := strconv.ParseInt(strings.TrimPrefix(key, prefix), 10, 64)
	if err != nil || !strings.HasPrefix(key, prefix) || last < 0 {
		return AbortedTxn{}, fmt.Errorf("%w: %s: not an aborted-transaction key", ErrCorruptValue, key)
	}
	var v abortedValue
	if err := decode(key, data, &v); err != nil {
		return AbortedTxn{}, err
	}
	if v.First < 0 || v.First > last || v.Stable < 0 || v.ProducerID < 0 {
		return AbortedTxn{}, fmt.Errorf("%w: %s: aborted transaction of producer %d from %d to %d, stable %d", ErrCorruptValue, key, v.ProducerID, v.First, last, v.Stable)
	}
	return AbortedTxn{Partition: partition, ProducerID: v.ProducerID, First: v.First, Last: last, Stable: v.Stable}, nil
}

// AbortedTxns returns the aborted transactions of a partition whose
// records overlap [from, upper): marker at or after from, first offset
// below upper. It reads the index by marker offset from from, and stops
// once an entry's stable offset reaches upper.
func (s *Store) AbortedTxns(ctx context.Context, topic uuid.UUID, partition int32, from, upper int64) ([]AbortedTxn, error) {
	prefix := s.abortedPrefix(topic, partition)
	key, end := s.abortedKey(topic, partition, max(from, 0)), clientv3.GetPrefixRangeEnd(prefix)
	var out []AbortedTxn
	const page = 256
	for {
		resp, err := s.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(page))
		if err != nil {
			return nil, fmt.Errorf("reading aborted transactions of %s/%d: %w", topic, partition, err)
		}
		for _, kv := range resp.Kvs {
			a, err := decodeAborted(prefix, string(kv.Key), partition, kv.Value)
			if err != nil {
				return nil, err
			}
			if a.First < upper {
				out = append(out, a)
			}
			if a.Stable >= upper {
				return out, nil
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// TrimAbortedTxns removes a partition's aborted-index entries whose
// marker is below start (retention removed their records).
func (s *Store) TrimAbortedTxns(ctx context.Context, topic uuid.UUID, partition int32, start int64) error {
	if start <= 0 {
		return nil
	}
	from := s.abortedPrefix(topic, partition)
	_, err := s.cli.Delete(ctx, from, clientv3.WithRange(s.abortedKey(topic, partition, min(start, math.MaxInt64))))
	if err != nil {
		return fmt.Errorf("trimming aborted transactions of %s/%d below %d: %w", topic, partition, start, err)
	}
	return nil
}

// TopicAbortedTxns returns every aborted transaction of a topic's
// partitions still in the index, by partition, in marker order: one range
// read (paged) however many partitions the topic has.
func (s *Store) TopicAbortedTxns(ctx context.Context, topic uuid.UUID) (map[int32][]AbortedTxn, error) {
	prefix := s.key(prefixAborted, topic.String(), "/")
	out := map[int32][]AbortedTxn{}
	err := s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, _ int64) error {
		rest := strings.TrimPrefix(key, prefix)
		ps, _, ok := strings.Cut(rest, "/")
		p, err := strconv.ParseInt(ps, 10, 32)
		if !ok || err != nil || p < 0 {
			return fmt.Errorf("%w: %s: not an aborted-transaction key", ErrCorruptValue, key)
		}
		a, err := decodeAborted(s.abortedPrefix(topic, int32(p)), key, int32(p), []byte(value))
		if err != nil {
			return err
		}
		out[int32(p)] = append(out[int32(p)], a)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading aborted transactions of topic %s: %w", topic, err)
	}
	return out, nil
}
