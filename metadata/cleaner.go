package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cleaner state: how far key-based compaction (cleanup.policy=compact)
// has cleaned each partition.
//
// Keys below the cluster root:
//
//	compactor/cleaned/<topic id>/<partition, 10 digits>
//	    {"v":1,"to":<offset>,"h":[[<offset>,<unix ms>],...],"t":<offset>}
//
// "to" is the cleaner's checkpoint: every record below it was compared
// with a key map of later records at least once (the partition's clean
// part); the records from it on are its dirty part. "h" are the offsets
// cleaned by past passes and when: a record below an offset was first
// cleaned at or before its time. A tombstone may be removed once
// delete.retention.ms has passed since it was first cleaned (consumers
// reading the partition had that long to see it); "t" is the offset below
// which the last clean removed such tombstones, so a partition whose
// horizons have since passed is cleaned again even with nothing dirty.
//
// The compactor writes a partition's state after the edits that cleaned
// it, fenced like its other writes. Losing that write only makes the next
// pass clean again what is already clean (and keep tombstones longer):
// the state never claims more than the log holds.

const prefixCleaned = "compactor/cleaned/"

// maxCleanHorizons bounds a partition's horizons: older ones are folded
// into the next (later offset, later time: tombstones wait longer, never
// less).
const maxCleanHorizons = 8

// CleanHorizon says that the records below Offset were first cleaned at
// or before At (Unix ms).
type CleanHorizon struct {
	Offset int64
	At     int64
}

// CleanerState is one partition's cleaning state.
type CleanerState struct {
	// CleanedTo is the first offset of the partition's dirty part.
	CleanedTo int64
	// Horizons, by ascending offset.
	Horizons []CleanHorizon
	// TombstonesCleared is the offset below which the last clean removed
	// the tombstones past their delete.retention.ms.
	TombstonesCleared int64
}

// Cleaned returns the state after a pass cleaned the records below to at
// now (Unix ms), removing the tombstones below cleared.
func (s CleanerState) Cleaned(to, cleared, now int64) CleanerState {
	out := CleanerState{CleanedTo: max(s.CleanedTo, to), TombstonesCleared: max(s.TombstonesCleared, cleared)}
	out.Horizons = append(out.Horizons, s.Horizons...)
	if n := len(out.Horizons); n == 0 || out.Horizons[n-1].Offset < to {
		out.Horizons = append(out.Horizons, CleanHorizon{Offset: to, At: now})
	}
	for len(out.Horizons) > maxCleanHorizons {
		out.Horizons = out.Horizons[1:] // the next covers its offsets, later
	}
	return out
}

// TombstonesBelow returns the offset below which tombstones were first
// cleaned at least retentionMs before now (Unix ms): those may go.
func (s CleanerState) TombstonesBelow(retentionMs, now int64) int64 {
	var below int64
	for _, h := range s.Horizons {
		if h.At > now-retentionMs {
			break
		}
		below = h.Offset
	}
	return below
}

type cleanerValue struct {
	V  int        `json:"v"`
	To int64      `json:"to"`
	H  [][2]int64 `json:"h,omitempty"`
	T  int64      `json:"t,omitempty"`
}

func (s *Store) cleanedPrefix(topic uuid.UUID) string {
	return s.key(prefixCleaned, topic.String(), "/")
}

func (s *Store) cleanedKey(topic uuid.UUID, partition int32) string {
	return s.cleanedPrefix(topic) + fmt.Sprintf("%010d", partition)
}

// CleanerStates returns the cleaning state of a topic's partitions from
// first up to end (a shard's) that have one.
func (s *Store) CleanerStates(ctx context.Context, topic uuid.UUID, first, end int32) (map[int32]CleanerState, error) {
	prefix := s.cleanedPrefix(topic)
	out := map[int32]CleanerState{}
	err := s.rangePages(ctx, s.cleanedKey(topic, first), s.cleanedKey(topic, end), func(key string, value []byte, _ int64) error {
		p, err := strconv.ParseInt(strings.TrimPrefix(key, prefix), 10, 32)
		if err != nil {
			return fmt.Errorf("%w: %s: not a partition", ErrCorruptValue, key)
		}
		var v cleanerValue
		if err := decode(key, value, &v); err != nil {
			return err
		}
		if v.V != 1 {
			return fmt.Errorf("%w: %s: version %d", ErrCorruptValue, key, v.V)
		}
		st := CleanerState{CleanedTo: v.To, TombstonesCleared: v.T}
		for _, h := range v.H {
			st.Horizons = append(st.Horizons, CleanHorizon{Offset: h[0], At: h[1]})
		}
		out[int32(p)] = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the cleaner state of topic %s: %w", topic, err)
	}
	return out, nil
}

// PutCleanerState writes a partition's cleaning state, fenced by f.
func (s *Store) PutCleanerState(ctx context.Context, f Fence, topic uuid.UUID, partition int32, st CleanerState) error {
	v := cleanerValue{V: 1, To: st.CleanedTo, T: st.TombstonesCleared}
	for _, h := range st.Horizons {
		v.H = append(v.H, [2]int64{h.Offset, h.At})
	}
	key := s.cleanedKey(topic, partition)
	_, err := s.compactorTxn(ctx, f, "writing cleaner state", nil, []clientv3.Op{clientv3.OpPut(key, encode(v))})
	return err
}
