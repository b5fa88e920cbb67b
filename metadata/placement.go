package metadata

import (
	"encoding/binary"
	"hash/fnv"
	"slices"
)

// Placement ranks live agents for a key by rendezvous (highest random
// weight) hashing: every agent gets a score hash(key, node ID) and the
// highest score leads. When an agent joins or leaves, only the keys it
// led (or now leads) move; everything else stays where it was.
//
// Leadership in floe is advisory: any agent serves any partition, since
// all data is in the object store and etcd. Naming one leader per
// partition lets clients route a partition's traffic to one agent, which
// keeps its batches together in one segment object and its reads in one
// cache.

// Rank returns the agents ordered by their score for key, best first.
func Rank(agents []AgentInfo, key string) []AgentInfo {
	type scored struct {
		a     AgentInfo
		score uint64
	}
	s := make([]scored, len(agents))
	for i, a := range agents {
		s[i] = scored{a, score(key, a.NodeID)}
	}
	slices.SortFunc(s, func(x, y scored) int {
		switch {
		case x.score > y.score:
			return -1
		case x.score < y.score:
			return 1
		}
		return int(x.a.NodeID - y.a.NodeID)
	})
	out := make([]AgentInfo, len(s))
	for i := range s {
		out[i] = s[i].a
	}
	return out
}

// Leader returns the agent that leads key, or false when no agent is live.
func Leader(agents []AgentInfo, key string) (AgentInfo, bool) {
	var (
		best      AgentInfo
		bestScore uint64
		found     bool
	)
	for _, a := range agents {
		sc := score(key, a.NodeID)
		if !found || sc > bestScore || sc == bestScore && a.NodeID < best.NodeID {
			best, bestScore, found = a, sc, true
		}
	}
	return best, found
}

// PartitionKey is the placement key of a topic's shard (for a topic of
// one partition per shard, of its partition): the partitions of a shard
// share a leader.
func PartitionKey(topic string, shard int32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(shard))
	return "p\x00" + topic + "\x00" + string(b[:])
}

// GroupKey is the placement key of a consumer group: the leader of this
// key among live agents is the group's coordinator.
func GroupKey(group string) string {
	return "g\x00" + group
}

// TxnKey is the placement key of a transactional ID: the leader of this
// key among live agents is its transaction coordinator.
func TxnKey(transactionalID string) string {
	return "x\x00" + transactionalID
}

func score(key string, node int32) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(node))
	h.Write(b[:])
	// fnv's low bits mix poorly for short inputs; finish with a
	// splitmix64 step so scores spread evenly.
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
