package metadata

// Shards.
//
// A topic's partitions are grouped into shards of ShardSize consecutive
// partitions (partition p is in shard p / ShardSize). A shard is the unit
// of commit, of index and of leadership:
//
//   - An agent's flush writes one log entry per shard it touched, not one
//     key per partition, so the etcd work of a flush grows with the shards
//     it touches (a few dozen for a topic of thousands of partitions), not
//     with its partitions.
//   - The shard's entries form its log: keys log/<topic>/<shard>/<seq>,
//     seq 1, 2, 3, ... Each entry lists the shard's extents in one object
//     and the high watermark of every partition of the shard after it, so
//     the latest entry is the shard's state and any entry tells where
//     each partition stood (the index can be searched by offset).
//   - Partitions of a shard share a leader, so one agent usually writes a
//     shard and commits seldom conflict.
//
// The shard size is fixed when the topic is created (DefaultShardSize):
// topics of up to 16 partitions keep one partition per shard, larger ones
// group up to 64. Partitions added later join shards of the same size.

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// MaxShardSize bounds the partitions of one shard.
const MaxShardSize = 64

// DefaultShardSize is the shard size a topic of n partitions is created
// with: n/16 rounded down to a power of two, between 1 and MaxShardSize.
// A topic therefore has at least 16 shards (leadership spreads over at
// least 16 agents) until it reaches 1024 partitions, and shards of 64
// beyond.
func DefaultShardSize(n int32) int32 {
	q := n / 16
	if q <= 1 {
		return 1
	}
	s := int32(1) << (31 - bits.LeadingZeros32(uint32(q)))
	return min(s, MaxShardSize)
}

// ShardID names one shard of one topic incarnation.
type ShardID struct {
	Topic uuid.UUID
	Shard int32
}

func (s ShardID) String() string { return fmt.Sprintf("%s/s%d", s.Topic, s.Shard) }

// ShardOf returns the shard holding partition p of a topic with the given
// shard size, and p's slot in it.
func ShardOf(topic uuid.UUID, shardSize, p int32) (ShardID, int32) {
	if shardSize < 1 {
		shardSize = 1
	}
	return ShardID{Topic: topic, Shard: p / shardSize}, p % shardSize
}

// Shard returns the shard holding partition p of t.
func (t Topic) Shard(p int32) ShardID {
	s, _ := ShardOf(t.ID, t.ShardSize, p)
	return s
}

// Shards is the number of shards of t.
func (t Topic) Shards() int32 {
	if t.Partitions == 0 {
		return 0
	}
	return (t.Partitions-1)/t.ShardSize + 1
}

// ShardPartitions returns the partitions of shard s of t: [first, end).
func (t Topic) ShardPartitions(s int32) (first, end int32) {
	first = s * t.ShardSize
	return first, min(first+t.ShardSize, t.Partitions)
}

const (
	// log/<topic id>/<shard, 6 digits>/<seq, 20 digits>: shard log
	// entries (FORMAT.md).
	prefixLog = "log/"
	// starts/<topic id>/<shard>: the log start offsets of a shard's
	// partitions, moved by retention and DeleteRecords only.
	prefixStarts = "starts/"
	// pstate/<topic id>/<shard>: the shard's producer-state floor;
	// pstate/<topic id>/<shard>/<partition, 10 digits>: a partition's
	// producer-state snapshot (FORMAT.md).
	prefixProducerState = "pstate/"
)

func shardPart(s ShardID) string { return s.Topic.String() + "/" + fmt.Sprintf("%06d", s.Shard) }

func (s *Store) logPrefix(sh ShardID) string { return s.key(prefixLog, shardPart(sh), "/") }

func (s *Store) logKey(sh ShardID, seq int64) string {
	return s.logPrefix(sh) + fmt.Sprintf("%020d", seq)
}

func (s *Store) startsKey(sh ShardID) string { return s.key(prefixStarts, shardPart(sh)) }

func (s *Store) pstateFloorKey(sh ShardID) string { return s.key(prefixProducerState, shardPart(sh)) }

func (s *Store) pstateKey(sh ShardID, p int32) string {
	return s.pstateFloorKey(sh) + "/" + fmt.Sprintf("%010d", p)
}

// parseShardPart parses "<topic id>/<shard>".
func parseShardPart(rest string) (ShardID, bool) {
	t, sh, ok := strings.Cut(rest, "/")
	if !ok || len(sh) != 6 {
		return ShardID{}, false
	}
	id, err := uuid.Parse(t)
	if err != nil {
		return ShardID{}, false
	}
	n, err := strconv.ParseInt(sh, 10, 32)
	if err != nil || n < 0 {
		return ShardID{}, false
	}
	return ShardID{Topic: id, Shard: int32(n)}, true
}

// parseLogKey parses the part of a log key after the log prefix.
func parseLogKey(rest string) (ShardID, int64, bool) {
	i := strings.LastIndexByte(rest, '/')
	if i < 0 || len(rest)-i-1 != 20 {
		return ShardID{}, 0, false
	}
	sh, ok := parseShardPart(rest[:i])
	if !ok {
		return ShardID{}, 0, false
	}
	seq, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil || seq <= 0 {
		return ShardID{}, 0, false
	}
	return sh, seq, true
}
