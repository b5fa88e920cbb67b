package metadata

// Committed offsets in etcd: offsets/<group>/<topic>/<part> holds a
// group's CommittedOffset for a partition (groups.go describes the keys
// and the ownership claim that fences every write).

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TopicPartition names one partition of a topic by name.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// CommittedOffset is a group's committed position in one partition.
type CommittedOffset struct {
	Topic     string    `json:"-"`
	Partition int32     `json:"-"`
	TopicID   uuid.UUID `json:"topic_id"` // the topic incarnation committed to
	Offset    int64     `json:"offset"`
	// LeaderEpoch is the client's leader epoch of the record at Offset-1,
	// or -1.
	LeaderEpoch int32 `json:"leader_epoch"`
	// Metadata is the client's metadata string; nil when the client sent
	// null.
	Metadata *string `json:"metadata,omitempty"`
	// Committed is the commit time (Unix ms).
	Committed int64 `json:"committed"`
	// ModRevision is the etcd revision of the stored value, when read
	// from etcd (not stored).
	ModRevision int64 `json:"-"`
}

type offsetValue struct {
	V int `json:"v"`
	CommittedOffset
}

// value encodes the offset as stored at its key (the key carries Topic and
// Partition).
func (o CommittedOffset) value() string { return encode(offsetValue{V: 1, CommittedOffset: o}) }

// DecodeCommittedOffset decodes an offset value. It never panics.
func DecodeCommittedOffset(key string, data []byte) (CommittedOffset, error) {
	var v offsetValue
	if err := decode(key, data, &v); err != nil {
		return CommittedOffset{}, err
	}
	if v.V != 1 {
		return CommittedOffset{}, fmt.Errorf("%w: %s: version %d (this agent reads version 1)", ErrCorruptValue, key, v.V)
	}
	return v.CommittedOffset, nil
}

func (s *Store) parseOffsetKey(group, key string) (string, int32, bool) {
	rest, ok := strings.CutPrefix(key, s.offsetsPrefix(group))
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", 0, false
	}
	p, err := strconv.ParseInt(rest[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, false
	}
	return rest[:i], int32(p), true
}

// FetchOffsets reads every offset the group has committed, sorted by topic
// and partition. Undecodable values are skipped and reported in bad.
func (s *Store) FetchOffsets(ctx context.Context, group string) (offsets []CommittedOffset, bad []error, err error) {
	return s.FetchOffsetsOf(ctx, group, nil)
}

// FetchOffsetsOf is FetchOffsets for the partitions of want only (nil:
// every partition): it reads only those topics' offsets from etcd, and
// decodes only those partitions' (a member of a wide group asks for its
// own partitions).
func (s *Store) FetchOffsetsOf(ctx context.Context, group string, want map[TopicPartition]bool) (offsets []CommittedOffset, bad []error, err error) {
	if err := ValidateGroupName(group); err != nil {
		return nil, nil, err
	}
	prefix := s.offsetsPrefix(group)
	var ops []clientv3.Op
	if want != nil {
		topics := map[string]bool{}
		for tp := range want {
			topics[tp.Topic] = true
		}
		if len(topics) <= maxTopicReads {
			for t := range topics {
				ops = append(ops, clientv3.OpGet(prefix+t+"/", clientv3.WithPrefix()))
			}
		}
	}
	if len(ops) == 0 {
		ops = append(ops, clientv3.OpGet(prefix, clientv3.WithPrefix()))
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, nil, fmt.Errorf("reading offsets of group %q: %w", group, err)
	}
	for _, r := range resp.Responses {
		for _, kv := range r.GetResponseRange().Kvs {
			topic, part, ok := s.parseOffsetKey(group, string(kv.Key))
			if ok && want != nil && !want[TopicPartition{topic, part}] {
				continue
			}
			o, err := decodeOffsetKV(kv, topic, part, ok)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			offsets = append(offsets, o)
		}
	}
	slices.SortFunc(offsets, func(a, b CommittedOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return offsets, bad, nil
}

// maxTopicReads bounds the topics FetchOffsetsOf reads one by one (in one
// transaction); for more it reads the whole group.
const maxTopicReads = 16

// decodeOffsetKV decodes a committed offset read from etcd, whose key
// parseOffsetKey parsed into topic and part (ok).
func decodeOffsetKV(kv *mvccpb.KeyValue, topic string, part int32, ok bool) (CommittedOffset, error) {
	if !ok {
		return CommittedOffset{}, fmt.Errorf("%w: %s: bad offset key", ErrCorruptValue, kv.Key)
	}
	o, err := DecodeCommittedOffset(string(kv.Key), kv.Value)
	if err != nil {
		return CommittedOffset{}, err
	}
	o.Topic, o.Partition, o.ModRevision = topic, part, kv.ModRevision
	return o, nil
}

// txnOps returns how many puts or deletes fit one transaction beside
// reserved other operations, given etcd's per-transaction limit (which
// applies to the compare, then and else lists separately).
func txnOps(maxOps, reserved int) int {
	return max(1, maxOps-reserved)
}

// CommitOffsets writes committed offsets through the claim, in as few
// transactions as maxOps (etcd's --max-txn-ops) allows. If st is not nil
// the group's state is written in the first transaction, so a group that
// so far existed only in memory is stored together with its first
// offsets. It returns how many offsets were committed, in order, before
// an error.
func (s *Store) CommitOffsets(ctx context.Context, c GroupClaim, st *GroupState, offsets []CommittedOffset, maxOps int) (int, error) {
	done := 0
	first := true
	for first || done < len(offsets) {
		var ops []clientv3.Op
		if first && st != nil {
			ops = append(ops, clientv3.OpPut(s.groupKey(c.Group), st.value()))
		}
		n := min(len(offsets)-done, txnOps(maxOps, len(ops)))
		// A request may name a partition twice; etcd refuses a key twice
		// in one transaction, and Kafka keeps the last: so do we.
		chunk := offsets[done : done+n]
		last := make(map[TopicPartition]int, len(chunk))
		for i, o := range chunk {
			last[TopicPartition{o.Topic, o.Partition}] = i
		}
		for i, o := range chunk {
			if last[TopicPartition{o.Topic, o.Partition}] == i {
				ops = append(ops, clientv3.OpPut(s.offsetKey(c.Group, o.Topic, o.Partition), o.value()))
			}
		}
		if len(ops) > 0 {
			if _, err := s.fencedTxn(ctx, c, "committing offsets", ops...); err != nil {
				return done, err
			}
		}
		done += n
		first = false
	}
	return done, nil
}

// DeleteOffsets removes committed offsets through the claim, in as few
// transactions as maxOps allows. Partitions with no commit are ignored.
func (s *Store) DeleteOffsets(ctx context.Context, c GroupClaim, parts []TopicPartition, maxOps int) error {
	step := txnOps(maxOps, 0)
	for lo := 0; lo < len(parts); lo += step {
		hi := min(len(parts), lo+step)
		ops := make([]clientv3.Op, 0, hi-lo)
		seen := make(map[TopicPartition]bool, hi-lo)
		for _, p := range parts[lo:hi] {
			if !seen[p] { // etcd refuses a key twice in one transaction
				seen[p] = true
				ops = append(ops, clientv3.OpDelete(s.offsetKey(c.Group, p.Topic, p.Partition)))
			}
		}
		if _, err := s.fencedTxn(ctx, c, "deleting offsets", ops...); err != nil {
			return err
		}
	}
	return nil
}

// ExpireOffsets removes committed offsets through the claim, each only if
// it is unchanged since it was read (offsets as FetchOffsets returned
// them, with their ModRevision): an
// offset committed meanwhile, by a transaction's coordinator say, which
// writes without the group's claim, is kept.
func (s *Store) ExpireOffsets(ctx context.Context, c GroupClaim, offsets []CommittedOffset, maxOps int) error {
	step := txnOps(maxOps, 0)
	for lo := 0; lo < len(offsets); lo += step {
		hi := min(len(offsets), lo+step)
		ops := make([]clientv3.Op, 0, hi-lo)
		seen := make(map[TopicPartition]bool, hi-lo)
		for _, o := range offsets[lo:hi] {
			tp := TopicPartition{Topic: o.Topic, Partition: o.Partition}
			if seen[tp] { // etcd refuses a key twice in one transaction
				continue
			}
			seen[tp] = true
			key := s.offsetKey(c.Group, o.Topic, o.Partition)
			ops = append(ops, clientv3.OpTxn(
				[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", o.ModRevision)},
				[]clientv3.Op{clientv3.OpDelete(key)}, nil))
		}
		if _, err := s.fencedTxn(ctx, c, "expiring offsets", ops...); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) offsetsPrefix(group string) string {
	return s.key(prefixOffsets, escapeGroup(group), "/")
}

func (s *Store) offsetKey(group, topic string, partition int32) string {
	return s.offsetsPrefix(group) + topic + "/" + strconv.FormatInt(int64(partition), 10)
}
