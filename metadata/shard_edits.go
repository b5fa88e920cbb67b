package metadata

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The compactor's reads of shard logs and its fenced rewrites of them
// (retention and merges); compaction.go has the election and the fence.

// StoredLogEntry is a log entry with its key's mod revision, which
// compactor writes compare.
type StoredLogEntry struct {
	LogEntry
	ModRevision int64
}

// ShardLog is what the compactor reads of a shard.
type ShardLog struct {
	Shard ShardID
	// Entries are all of the shard's entries in sequence order, read in
	// pages (each page consistent) before State.
	Entries []StoredLogEntry
	// State is the shard's state, read after the entries: a commit between
	// the two reads only adds entries after the last one read.
	State ShardState
	// ProducerFloor is the sequence number up to which every partition's
	// producer state is in a snapshot: entries at or below it may be
	// merged (merged entries carry no producer deltas).
	ProducerFloor int64
}

// ReadShardLog reads a shard's entries, state and producer floor.
func (s *Store) ReadShardLog(ctx context.Context, sh ShardID) (ShardLog, error) {
	out := ShardLog{Shard: sh}
	prefix := s.logPrefix(sh)
	err := s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, modRev int64) error {
		e, err := s.decodeLogKV(key, value)
		if err != nil {
			return err
		}
		out.Entries = append(out.Entries, StoredLogEntry{LogEntry: e, ModRevision: modRev})
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("reading the log of shard %s: %w", sh, err)
	}
	if out.State, err = s.GetShardState(ctx, sh); err != nil {
		return out, err
	}
	floorKey := s.pstateFloorKey(sh)
	resp, err := s.cli.Get(ctx, floorKey)
	if err != nil {
		return out, fmt.Errorf("reading the producer floor of shard %s: %w", sh, err)
	}
	if len(resp.Kvs) > 0 {
		var f floorValue
		if err := decode(floorKey, resp.Kvs[0].Value, &f); err != nil {
			return out, err
		}
		out.ProducerFloor = f.Seq
	}
	return out, nil
}

// RefreshProducerSnapshots rebuilds a shard's producer state from its
// snapshots and log and writes it as of the latest entry, raising the
// producer floor to it, so entries up to there can be merged.
func (s *Store) RefreshProducerSnapshots(ctx context.Context, sh ShardID) (int64, error) {
	var cfg CommitConfig
	cfg.setDefaults()
	st, err := s.loadShardState(ctx, sh, cfg)
	if err != nil {
		return 0, err
	}
	if st.floor >= st.seq {
		return st.floor, nil
	}
	if err := s.writeSnapshots(ctx, sh, st, cfg.txnBudget()); err != nil {
		return 0, fmt.Errorf("writing producer snapshots of shard %s: %w", sh, err)
	}
	return st.seq, nil
}

// ForEachLogEntry calls fn for every log entry of the cluster, reading in
// pages (each page is consistent; the whole is not a snapshot). A value
// that does not decode stops the scan with ErrCorruptValue: a garbage
// collector must not guess what it references.
func (s *Store) ForEachLogEntry(ctx context.Context, fn func(ShardID, LogEntry) error) error {
	prefix := s.key(prefixLog)
	return s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, _ int64) error {
		sh, _, ok := parseLogKey(key[len(prefix):])
		if !ok {
			return fmt.Errorf("%w: %s: not a log key", ErrCorruptValue, key)
		}
		e, err := s.decodeLogKV(key, value)
		if err != nil {
			return err
		}
		return fn(sh, e)
	})
}

// ShardEdit is one fenced change the compactor makes to a shard's log:
// retention (log starts raised, entries removed or rewritten without
// their expired extents) or a merge (consecutive entries replaced by one
// that covers them all).
type ShardEdit struct {
	Shard ShardID
	// Starts raises log starts, by slot, compared with the starts key as
	// State read it.
	Starts map[int32]int64
	State  ShardState
	// Delete removes entries; Put writes entries (a merged entry at the
	// key of the first it replaces, or an entry rewritten), each compared
	// with the mod revision read (0: the key must not exist).
	Delete []StoredLogEntry
	Put    []StoredLogEntry
	// Unreferenced are the objects that lost a reference: their marks are
	// stamped in the same transaction.
	Unreferenced []string
}

// Ops is the number of etcd operations (and, less one, compares) the
// edit needs; callers keep it within etcd's --max-txn-ops.
func (e ShardEdit) Ops() int {
	n := len(e.Delete) + len(e.Put) + len(dedupe(e.Unreferenced)) + 1
	return n
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// EditShard applies an edit in one transaction fenced by f. Every entry
// deleted or rewritten must be unchanged since read, and the starts too;
// otherwise nothing is written and the error is ErrConflict. It never
// touches the entries agents add meanwhile (those after the last one
// read), so callers must never delete or merge away a shard's latest
// entry: it holds the shard's high watermarks.
func (s *Store) EditShard(ctx context.Context, f Fence, e ShardEdit) (int64, error) {
	var (
		cmps []clientv3.Cmp
		ops  []clientv3.Op
	)
	for _, d := range e.Delete {
		k := s.logKey(e.Shard, d.Seq)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", d.ModRevision))
		ops = append(ops, clientv3.OpDelete(k))
	}
	for _, p := range e.Put {
		k := s.logKey(e.Shard, p.Seq)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", p.ModRevision))
		ops = append(ops, clientv3.OpPut(k, string(s.encodeEntry(ctx, &p.LogEntry))))
	}
	if len(e.Starts) > 0 {
		n := len(e.State.Starts)
		for slot := range e.Starts {
			n = max(n, int(slot)+1)
		}
		starts := make([]int64, n)
		copy(starts, e.State.Starts)
		for slot, v := range e.Starts {
			starts[slot] = max(starts[slot], v)
		}
		key := s.startsKey(e.Shard)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", e.State.StartsRev))
		ops = append(ops, clientv3.OpPut(key, encode(startsValue{V: 1, Starts: starts})))
	}
	if len(ops) == 0 {
		return 0, nil
	}
	ops = append(ops, s.markOps(e.Unreferenced, time.Now())...)
	resp, err := s.compactorTxn(ctx, f, fmt.Sprintf("editing the log of shard %s", e.Shard), cmps, ops)
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}
