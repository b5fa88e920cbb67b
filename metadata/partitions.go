package metadata

// Partition state and the index, read side.
//
// A partition's high watermark is in its shard's latest log entry; its
// log start offset in the shard's starts key (moved only by retention and
// DeleteRecords, so agents' commits never conflict with them). The index
// is the shard's log: entry n holds partition p's offsets from entry
// n-1's high watermark of p to its own, so the entry holding an offset is
// found by a binary search over sequence numbers.

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// PartitionID names one partition of one topic incarnation.
type PartitionID struct {
	Topic     uuid.UUID
	Partition int32
}

func (p PartitionID) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// PartitionState is a partition's committed state.
type PartitionState struct {
	// Next is the offset the next record gets: the high watermark.
	Next int64
	// Start is the log start offset: the earliest offset still readable.
	Start int64
	// Stable is the last stable offset: the first offset of the oldest
	// open transaction, or Next when none is open.
	Stable int64
	// Revision is the etcd revision the state was read at.
	Revision int64
}

// IndexEntry locates a run of a partition's records in a segment object:
// one extent of a log entry, with what a reader needs to serve it.
type IndexEntry struct {
	// Object is the segment object's key in the bucket, ObjectSize its
	// size (0 when unknown).
	Object     string
	ObjectSize int64
	// Offset and Length are the extent's byte range in the object.
	Offset int64
	Length int64
	// First and Last are the first and last offsets of the records this
	// entry holds (inclusive).
	First int64
	Last  int64
	// Batches is how many batches of the extent are part of the log.
	Batches int32
	// Skip lists ordinals of batches in the extent that are not part of
	// the log (duplicates and rejected batches that were written before
	// the commit decided); readers pass over them.
	Skip []int32
	// MinTimestamp and MaxTimestamp bound the records' timestamps (Unix
	// ms).
	MinTimestamp int64
	MaxTimestamp int64
	// Committed is when the entry was committed (Unix ms).
	Committed int64
	// Seq is the sequence number of the log entry holding it.
	Seq int64
}

// Records is the number of offsets the entry holds.
func (e IndexEntry) Records() int64 { return e.Last - e.First + 1 }

// startsValue holds the log start offsets of a shard's partitions, from
// its first partition.
type startsValue struct {
	V      int     `json:"v"`
	Starts []int64 `json:"starts"`
}

func decodeStarts(key string, data []byte) ([]int64, error) {
	var v startsValue
	if err := decode(key, data, &v); err != nil {
		return nil, err
	}
	if len(v.Starts) > MaxShardSize {
		return nil, fmt.Errorf("%w: %s: %d partitions", ErrCorruptValue, key, len(v.Starts))
	}
	for _, s := range v.Starts {
		if s < 0 {
			return nil, fmt.Errorf("%w: %s: negative log start", ErrCorruptValue, key)
		}
	}
	return v.Starts, nil
}

// ShardState is a shard's committed state: its latest entry's sequence
// number and high watermarks, and its log start offsets.
type ShardState struct {
	Seq int64
	// Nexts, Stables and Starts are by slot (partition - first partition
	// of the shard); slots beyond their length are 0.
	Nexts, Stables, Starts []int64
	// Revision is the etcd revision the state was read at; StartsRev the
	// mod revision of the starts key (0: none).
	Revision, StartsRev int64
}

// Partition returns slot i's state.
func (st ShardState) Partition(i int32) PartitionState {
	ps := PartitionState{Revision: st.Revision}
	if int(i) < len(st.Nexts) {
		ps.Next = st.Nexts[i]
	}
	ps.Stable = ps.Next
	if int(i) < len(st.Stables) {
		ps.Stable = min(st.Stables[i], ps.Next)
	}
	if int(i) < len(st.Starts) {
		ps.Start = min(st.Starts[i], ps.Next)
	}
	return ps
}

// GetShardState reads a shard's state (linearizable).
func (s *Store) GetShardState(ctx context.Context, sh ShardID) (ShardState, error) {
	st, err := s.getShardState(ctx, sh)
	if errors.Is(err, ErrConflict) {
		// etcd compacted the revision mid-read: read again.
		st, err = s.getShardState(ctx, sh)
	}
	return st, err
}

func (s *Store) getShardState(ctx context.Context, sh ShardID) (ShardState, error) {
	last, rev, err := s.lastEntry(ctx, sh)
	if err != nil {
		return ShardState{}, err
	}
	resp, err := s.cli.Get(ctx, s.startsKey(sh), clientv3.WithRev(rev))
	if err != nil {
		return ShardState{}, readAtErr(err, "shard "+sh.String(), rev)
	}
	st := ShardState{Revision: rev}
	if last != nil {
		st.Seq, st.Nexts, st.Stables = last.SeqLast, last.Nexts, last.StableOffsets()
	}
	if kvs := resp.Kvs; len(kvs) > 0 {
		if st.Starts, err = decodeStarts(string(kvs[0].Key), kvs[0].Value); err != nil {
			return ShardState{}, err
		}
		st.StartsRev = kvs[0].ModRevision
	}
	return st, nil
}

// readAtErr wraps the error of a read at revision rev: ErrConflict when
// etcd compacted the revision away (what was read before it may have
// changed since: read again).
func readAtErr(err error, what string, rev int64) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: %s at revision %d: %w", ErrConflict, what, rev, err)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

// GetPartitionState reads partition p of t (linearizable). A partition
// nothing was written to has the zero state.
func (s *Store) GetPartitionState(ctx context.Context, t Topic, p int32) (PartitionState, error) {
	sh, slot := ShardOf(t.ID, t.ShardSize, p)
	st, err := s.GetShardState(ctx, sh)
	if err != nil {
		return PartitionState{}, err
	}
	return st.Partition(slot), nil
}

// decodeLogKV decodes a log entry read from etcd.
func (s *Store) decodeLogKV(key string, value []byte) (LogEntry, error) {
	rest := key[min(len(key), len(s.key(prefixLog))):]
	_, seq, ok := parseLogKey(rest)
	if !ok {
		return LogEntry{}, fmt.Errorf("%w: %s: not a log key", ErrCorruptValue, key)
	}
	return DecodeLogEntry(key, seq, value)
}

// Seek is where an offset of a partition is in its shard's log.
type Seek struct {
	// Seq is the sequence number of the entry holding the offset.
	Seq int64
	// Floor is the high watermarks of the entry before it (nil when it is
	// the first entry left in the log).
	Floor []int64
	// Rev is the etcd revision the search read at: reading the log at it
	// (ShardWindow) sees the entries the search saw.
	Rev int64
}

// SeekEntry finds the first entry of partition p's shard whose high
// watermark of p is above offset: the entry that holds offset, if any
// does. ok is false when offset is at or beyond the high watermark.
//
// It searches sequence numbers (searchLog). (A read of the entry at or
// before a number would be one request, but etcd answers a descending
// read by reading and sorting every entry of the range: its cost grows
// with the log.)
func (s *Store) SeekEntry(ctx context.Context, t Topic, p int32, offset int64) (Seek, bool, error) {
	low, up, rev, err := s.searchLog(ctx, t.Shard(p), func(e *LogEntry) bool {
		next, _ := e.Next(p)
		return next > offset
	})
	if err != nil || up == nil {
		return Seek{}, false, err
	}
	seek := Seek{Seq: up.Seq, Rev: rev}
	if low != nil {
		seek.Floor = low.Nexts
	}
	return seek, true, nil
}

// lastEntry returns a shard's latest log entry (nil: none) and the
// revision it was read at.
func (s *Store) lastEntry(ctx context.Context, sh ShardID) (*LogEntry, int64, error) {
	last, _, rev, err := s.searchLog(ctx, sh, func(*LogEntry) bool { return false })
	return last, rev, err
}

// searchLog finds where the entries of a shard's log start to hold
// (holds must be false up to some entry and true from there on): it
// returns the last entry that does not hold (nil: none) and the first
// that does (nil: none), and the revision it read at: that of its first
// read (it searches again if etcd compacts that revision meanwhile).
//
// It reads only "the first entry at or after n", which costs etcd one or
// two values whatever the log's length, seekProbes numbers per request:
// while no entry that holds is found, lower+step, +2·step, +4·step, ...
// (the step growing each round); then evenly between the bounds.
func (s *Store) searchLog(ctx context.Context, sh ShardID, holds func(*LogEntry) bool) (low, up *LogEntry, rev int64, err error) {
	low, up, rev, err = s.searchLogOnce(ctx, sh, holds)
	if errors.Is(err, ErrConflict) {
		low, up, rev, err = s.searchLogOnce(ctx, sh, holds)
	}
	return low, up, rev, err
}

func (s *Store) searchLogOnce(ctx context.Context, sh ShardID, holds func(*LogEntry) bool) (low, up *LogEntry, rev int64, err error) {
	// lower: no entry starting at or below it holds (low is the last
	// such entry read); upper (once found): the first entry at or after
	// it, up, holds or is past the log's end (nil).
	var (
		lower, upper int64
		found        bool
	)
	step := int64(1)
	for !found || upper > lower+1 {
		var ats []int64
		for j := range int64(seekProbes) {
			at := lower + step<<j
			if found {
				at = lower + (upper-lower)*(j+1)/(seekProbes+1)
			}
			if at > lower && (!found || at < upper) && (len(ats) == 0 || at > ats[len(ats)-1]) {
				ats = append(ats, at)
			}
		}
		if len(ats) == 0 {
			ats = []int64{lower + 1}
		}
		entries, r, err := s.entriesAtOrAfter(ctx, sh, ats, rev)
		if err != nil {
			return nil, nil, 0, err
		}
		rev = r
		for i, e := range entries {
			if e == nil || holds(e) {
				upper, up, found = ats[i], e, true
				break
			}
			if e.SeqLast > lower {
				lower, low = e.SeqLast, e
			}
		}
		if !found {
			if step > 1<<40 {
				return nil, nil, 0, fmt.Errorf("%w: the log of shard %s has no end", ErrCorruptValue, sh)
			}
			step <<= seekProbes
		}
	}
	return low, up, rev, nil
}

// seekProbes is how many sequence numbers one round of SeekEntry reads:
// etcd's cost is mostly per request, and each probe reads two entries.
const seekProbes = 8

// entriesAtOrAfter returns, for each of seqs, the shard's first entry
// with a sequence number at or above it (nil: none), in one request read
// at revision rev (0: the latest), and the revision read at.
func (s *Store) entriesAtOrAfter(ctx context.Context, sh ShardID, seqs []int64, rev int64) ([]*LogEntry, int64, error) {
	ops := make([]clientv3.Op, len(seqs))
	for i, seq := range seqs {
		ops[i] = s.logOp(sh, seq, 1, rev)
	}
	resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, readAtErr(err, "the log of shard "+sh.String(), rev)
	}
	if rev == 0 {
		rev = resp.Header.Revision
	}
	out := make([]*LogEntry, len(seqs))
	for i, r := range resp.Responses {
		kvs := r.GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		e, err := s.decodeLogKV(string(kvs[0].Key), kvs[0].Value)
		if err != nil {
			return nil, 0, err
		}
		out[i] = &e
	}
	return out, rev, nil
}

// PartitionEntries returns partition p's index entries from the one
// holding offset from on, at most limit (0: no limit), reading its
// shard's log.
func (s *Store) PartitionEntries(ctx context.Context, t Topic, p int32, from int64, limit int) ([]IndexEntry, error) {
	var out []IndexEntry
	holds := func(e *LogEntry) bool {
		next, _ := e.Next(p)
		return next > from
	}
	err := s.scanLog(ctx, t.Shard(p), holds, func(e *LogEntry) error {
		if limit > 0 && len(out) >= limit {
			return errStopPages
		}
		if x, ok := e.ExtentOf(p); ok {
			out = append(out, e.IndexEntry(x))
		}
		return nil
	})
	return out, err
}

// ShardPartitionEntries returns the index entries of several partitions
// of one shard, each from the entry holding its offset in from on, reading
// the shard's log once for them all: from the first log entry holding one
// of those offsets, at most limit log entries (0: no limit). complete
// reports whether that read reached the end of the log: a partition with
// no entry then has none from its offset on.
func (s *Store) ShardPartitionEntries(ctx context.Context, t Topic, from map[int32]int64, limit int) (entries map[int32][]IndexEntry, complete bool, err error) {
	var sh ShardID
	first := true
	for p := range from {
		if first {
			sh, first = t.Shard(p), false
		} else if t.Shard(p) != sh {
			return nil, false, fmt.Errorf("metadata: ShardPartitionEntries of partitions of more than one shard of %s", t.Name)
		}
	}
	if first {
		return nil, true, nil
	}
	holds := func(e *LogEntry) bool {
		for p, off := range from {
			if next, _ := e.Next(p); next > off {
				return true
			}
		}
		return false
	}
	entries, complete = map[int32][]IndexEntry{}, true
	read := 0
	err = s.scanLog(ctx, sh, holds, func(e *LogEntry) error {
		if limit > 0 && read >= limit {
			complete = false
			return errStopPages
		}
		read++
		for p, off := range from {
			if x, ok := e.ExtentOf(p); ok {
				if ie := e.IndexEntry(x); ie.Last >= off {
					entries[p] = append(entries[p], ie)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return entries, complete, nil
}

// scanLog calls fn with the entries of a shard's log in order, from the
// first for which holds is true (searchLog) to the end or until fn
// returns errStopPages. The entries are read at the revision the search
// read at: at the latest, a merge swapping entries in since would hide
// those between the one found and the ones that replaced them.
func (s *Store) scanLog(ctx context.Context, sh ShardID, holds func(*LogEntry) bool, fn func(*LogEntry) error) error {
	_, up, rev, err := s.searchLog(ctx, sh, holds)
	if err != nil || up == nil {
		return err
	}
	err = s.rangePagesAt(ctx, s.logKey(sh, up.Seq), clientv3.GetPrefixRangeEnd(s.logPrefix(sh)), rev, func(key string, value []byte, _ int64) error {
		e, err := s.decodeLogKV(key, value)
		if err != nil {
			return err
		}
		return fn(&e)
	})
	switch {
	case err == errStopPages:
		return nil
	case err != nil:
		return readAtErr(err, "the log of shard "+sh.String(), rev)
	}
	return nil
}

// AdvanceLogStart moves partition p's log start offset up to offset, as
// Kafka's DeleteRecords does: -1 means the high watermark; an offset at or
// below the current start changes nothing; one beyond the high watermark
// (or another negative one) is ErrOffsetOutOfRange. It returns the state
// after the call; the entries left below the start are removed by the
// compactor.
func (s *Store) AdvanceLogStart(ctx context.Context, t Topic, p int32, offset int64) (PartitionState, error) {
	sh, slot := ShardOf(t.ID, t.ShardSize, p)
	for {
		st, err := s.GetShardState(ctx, sh)
		if err != nil {
			return PartitionState{}, err
		}
		ps := st.Partition(slot)
		target := offset
		if target == -1 {
			target = ps.Next
		}
		if target < 0 || target > ps.Next {
			return ps, fmt.Errorf("%w: %d is not between the log start %d and the high watermark %d of %s/%d (-1 means the high watermark)", ErrOffsetOutOfRange, offset, ps.Start, ps.Next, t.Name, p)
		}
		if target <= ps.Start {
			return ps, nil
		}
		resp, err := s.setStarts(ctx, sh, st, map[int32]int64{slot: target}, nil)
		if err != nil {
			return ps, fmt.Errorf("advancing the log start of %s/%d: %w", t.Name, p, err)
		}
		if resp.Succeeded {
			ps.Start, ps.Revision = target, resp.Header.Revision
			return ps, nil
		}
		// Another writer moved a start meanwhile: re-read and retry.
	}
}

// setStarts writes a shard's starts with the given slots raised, compared
// with the starts key as read in st, plus extra compares.
func (s *Store) setStarts(ctx context.Context, sh ShardID, st ShardState, raise map[int32]int64, extra []clientv3.Cmp, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	n := len(st.Starts)
	for slot := range raise {
		n = max(n, int(slot)+1)
	}
	starts := make([]int64, n)
	copy(starts, st.Starts)
	for slot, v := range raise {
		starts[slot] = max(starts[slot], v)
	}
	key := s.startsKey(sh)
	cmps := append([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", st.StartsRev)}, extra...)
	ops = append(ops, clientv3.OpPut(key, encode(startsValue{V: 1, Starts: starts})))
	return s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
}

// errStopPages ends a paged read early, from inside its callback.
var errStopPages = errors.New("metadata: stop reading pages")

// getLogAt reads up to limit of a shard's log entries from sequence
// number from on, at revision rev (0: the latest).
func (s *Store) getLogAt(ctx context.Context, sh ShardID, from, limit, rev int64) (*clientv3.GetResponse, error) {
	resp, err := s.cli.Do(ctx, s.logOp(sh, from, limit, rev))
	if err != nil {
		return nil, readAtErr(err, "the log of shard "+sh.String(), rev)
	}
	return resp.Get(), nil
}

// logOp reads up to limit of a shard's log entries from sequence number
// from on, at revision rev (0: the latest).
func (s *Store) logOp(sh ShardID, from, limit, rev int64) clientv3.Op {
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(s.logPrefix(sh))), clientv3.WithLimit(limit)}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return clientv3.OpGet(s.logKey(sh, max(from, 1)), opts...)
}

// ShardWindow reads up to limit of a shard's entries from sequence number
// from on, at etcd revision rev (0: the latest; a Seek's Rev reads the log
// as the seek saw it).
//
// A revision etcd has compacted away is ErrConflict: the log changed
// since; seek again.
func (s *Store) ShardWindow(ctx context.Context, sh ShardID, from, limit, rev int64) ([]LogEntry, error) {
	resp, err := s.getLogAt(ctx, sh, from, limit, rev)
	if err != nil {
		return nil, err
	}
	entries := make([]LogEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		e, err := s.decodeLogKV(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return entries, nil
}
