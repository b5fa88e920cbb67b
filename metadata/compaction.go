package metadata

// Compaction: the election that makes one compactor active, the writes it
// makes (retention, merges, garbage-collection marks), each fenced by that
// election, and DeleteRecords' log start advance.
//
// Keys below the cluster root:
//
//	compactor/leader/<lease id, hex>      election candidates
//	                                      (concurrency.Election); the one
//	                                      with the lowest create revision
//	                                      leads. Value: the compactor's ID.
//	compactor/unreferenced/<object key>   {"v":1,"since":<unix ms>}: when
//	                                      the object last lost an index
//	                                      reference through a compactor
//	                                      write
//	compactor/doomed/<object key>         {"v":1,"since":<unix ms>}: the
//	                                      collector will delete the object
//	                                      at its next pass; agents can no
//	                                      longer commit it
//
// Fencing. A compactor write carries a Fence: the leader key and its create
// revision. Every such transaction compares the key's create revision with
// the fence's in the same transaction as its writes, so a compactor that
// lost its leadership (its session's lease lapsed, it resigned) can never
// write, however late its request arrives. A failed fence is ErrNotLeader.
//
// Unreferenced marks. An object may be read for a while after the last
// index entry naming it goes: readers cache index windows (up to a minute)
// and finish reads they started. So the garbage collector does not judge
// an object by its age alone: every compactor write that removes index
// entries (retention, merge swaps) also stamps, in the same transaction,
// the time each of their objects lost a reference. An object is deleted
// only once no entry references it and both its creation and its last
// stamp are older than the grace period. The collector removes stamps once
// their objects are deleted (or referenced, or gone), so marks exist only
// for objects awaiting deletion and etcd stays bounded. Objects that never
// had a stamp (written but never committed; topics removed by DeleteTopic)
// age from their creation.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Errors of compaction writes. (They sit here, beside the writes that
// return them, like the group errors in groups.go.)
var (
	// ErrNotLeader: the write's fence failed: the caller is no longer the
	// active compactor (its session ended or another compactor leads), and
	// nothing was written.
	ErrNotLeader = errors.New("metadata: not the active compactor")
	// ErrOffsetOutOfRange: a log start offset beyond the high watermark was
	// requested.
	ErrOffsetOutOfRange = errors.New("metadata: offset out of range")
)

const (
	// keyCompactorLeader is the election prefix; candidates are
	// <prefix>/<lease id>.
	keyCompactorLeader = "compactor/leader"
	// prefixUnreferenced holds garbage-collection marks, by object key.
	prefixUnreferenced = "compactor/unreferenced/"
	// prefixDoomed holds doom marks: objects the collector will delete at
	// its next pass unless referenced. Agents' commits compare that their
	// object has none.
	prefixDoomed = "compactor/doomed/"
	// pageSize is how many keys a paged range read asks for at a time.
	pageSize = 1000
)

// Fence is proof of holding the compactor leadership: the leader key and
// its create revision. Compactor writes compare it in their transaction.
// The zero Fence fails every write.
type Fence struct {
	key string
	rev int64
}

// Valid reports whether f came from an election.
func (f Fence) Valid() bool { return f.key != "" && f.rev > 0 }

func (f Fence) String() string { return fmt.Sprintf("%s@%d", f.key, f.rev) }

func (f Fence) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(f.key), "=", f.rev)
}

// CompactorLeadership is a won compactor election. Done is closed when the
// session behind it ends; writes made with its Fence fail from then on
// even if the holder has not noticed yet.
type CompactorLeadership struct {
	session  *concurrency.Session
	election *concurrency.Election
	fence    Fence
}

// CampaignCompactor joins the compactor election under a session lease of
// ttl and blocks until id leads or ctx ends. Any number of compactors may
// campaign; one leads at a time, and the next takes over when the
// leader's lease lapses or it resigns.
func (s *Store) CampaignCompactor(ctx context.Context, id string, ttl time.Duration) (*CompactorLeadership, error) {
	secs := max(1, int(ttl/time.Second))
	session, err := concurrency.NewSession(s.cli, concurrency.WithTTL(secs), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("granting compactor election lease: %w", err)
	}
	e := concurrency.NewElection(session, s.key(keyCompactorLeader))
	if err := e.Campaign(ctx, id); err != nil {
		session.Close()
		return nil, fmt.Errorf("campaigning for compactor leadership: %w", err)
	}
	// Campaign returns once every older candidate is gone; if our own
	// lease lapsed meanwhile our key is gone too. Check before leading.
	f := Fence{key: e.Key(), rev: e.Rev()}
	resp, err := s.cli.Get(ctx, f.key)
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("confirming compactor leadership: %w", err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != f.rev {
		session.Close()
		return nil, fmt.Errorf("%w: the election key vanished while campaigning", ErrNotLeader)
	}
	return &CompactorLeadership{session: session, election: e, fence: f}, nil
}

// Fence returns the fence every write of this leadership carries.
func (l *CompactorLeadership) Fence() Fence { return l.fence }

// Done is closed when the session ends: the leadership is over.
func (l *CompactorLeadership) Done() <-chan struct{} { return l.session.Done() }

// Resign gives up the leadership at once (rather than after the lease
// TTL) and ends the session.
func (l *CompactorLeadership) Resign(ctx context.Context) error {
	err := l.election.Resign(ctx)
	if cerr := l.session.Close(); err == nil {
		err = cerr
	}
	return err
}

// CompactorLeader returns the ID of the active compactor, if any.
func (s *Store) CompactorLeader(ctx context.Context) (id string, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.key(keyCompactorLeader)+"/", append(clientv3.WithFirstCreate(), clientv3.WithLimit(1))...)
	if err != nil {
		return "", false, fmt.Errorf("reading compactor leader: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return "", false, nil
	}
	return string(resp.Kvs[0].Value), true, nil
}

// compactorTxn runs a transaction guarded by f and cmps. When it does not
// apply, it tells a lost fence (ErrNotLeader) from another failed compare
// (ErrConflict) with the else branch's read of the leader key.
func (s *Store) compactorTxn(ctx context.Context, f Fence, what string, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	if !f.Valid() {
		return nil, fmt.Errorf("%w: %s without a fence", ErrNotLeader, what)
	}
	resp, err := s.cli.Txn(ctx).
		If(append([]clientv3.Cmp{f.cmp()}, cmps...)...).
		Then(ops...).
		Else(clientv3.OpGet(f.key)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) == 0 || kvs[0].CreateRevision != f.rev {
			return nil, fmt.Errorf("%w: %s", ErrNotLeader, what)
		}
		return nil, fmt.Errorf("%w: %s", ErrConflict, what)
	}
	return resp, nil
}

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

// markOps returns puts stamping each distinct object of entries as
// unreferenced since now.
func (s *Store) markOps(objects []string, now time.Time) []clientv3.Op {
	seen := make(map[string]bool, len(objects))
	var ops []clientv3.Op
	for _, o := range objects {
		if seen[o] {
			continue
		}
		seen[o] = true
		ops = append(ops, clientv3.OpPut(s.key(prefixUnreferenced, o), encode(markValue{V: 1, Since: now.UnixMilli()})))
	}
	return ops
}

type markValue struct {
	V     int   `json:"v"`
	Since int64 `json:"since"`
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
		ops = append(ops, clientv3.OpPut(k, string(p.Encode())))
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

// ObjectMark is a garbage-collection stamp: when an object last lost an
// index reference.
type ObjectMark struct {
	Object      string
	Since       time.Time
	ModRevision int64
}

// ObjectMarks reads every unreferenced mark, in pages. A mark whose value
// does not decode gets the time it is read as Since, so its object waits a
// full grace period rather than being deleted early.
func (s *Store) ObjectMarks(ctx context.Context) ([]ObjectMark, error) {
	return s.readMarks(ctx, s.key(prefixUnreferenced), "unreferenced marks")
}

// readMarks reads the object marks under prefix, in pages; what names
// them in errors.
func (s *Store) readMarks(ctx context.Context, prefix, what string) ([]ObjectMark, error) {
	var out []ObjectMark
	now := time.Now()
	err := s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, modRev int64) error {
		m := ObjectMark{Object: strings.TrimPrefix(key, prefix), Since: now, ModRevision: modRev}
		var v markValue
		if decode(key, value, &v) == nil && v.Since > 0 {
			m.Since = time.UnixMilli(v.Since)
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return out, nil
}

// DeleteObjectMarks removes marks, each only if unchanged since read, in
// one transaction fenced by f. It needs len(marks) operations and
// len(marks)+1 compares. A mark stamped again meanwhile fails the whole
// call with ErrConflict.
func (s *Store) DeleteObjectMarks(ctx context.Context, f Fence, marks []ObjectMark) error {
	if len(marks) == 0 {
		return nil
	}
	cmps := make([]clientv3.Cmp, len(marks))
	ops := make([]clientv3.Op, len(marks))
	for i, m := range marks {
		key := s.key(prefixUnreferenced, m.Object)
		cmps[i] = clientv3.Compare(clientv3.ModRevision(key), "=", m.ModRevision)
		ops[i] = clientv3.OpDelete(key)
	}
	_, err := s.compactorTxn(ctx, f, fmt.Sprintf("deleting %d unreferenced marks", len(marks)), cmps, ops)
	return err
}

// doomKey is the doom mark of an object.
func (s *Store) doomKey(object string) string { return s.key(prefixDoomed, object) }

// DoomMarks reads every doom mark, in pages (Since is when it was made).
func (s *Store) DoomMarks(ctx context.Context) ([]ObjectMark, error) {
	return s.readMarks(ctx, s.key(prefixDoomed), "doom marks")
}

// DoomObjects marks objects for deletion, fenced by f. From then on no
// agent can commit them (the commit compares the mark's absence), so an
// object that is still unreferenced after the mark was made can be
// deleted safely: a commit that raced the mark either landed before it
// (and the collector sees the reference) or fails.
func (s *Store) DoomObjects(ctx context.Context, f Fence, objects []string, now time.Time) error {
	if len(objects) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, len(objects))
	for i, o := range objects {
		ops[i] = clientv3.OpPut(s.doomKey(o), encode(markValue{V: 1, Since: now.UnixMilli()}))
	}
	_, err := s.compactorTxn(ctx, f, fmt.Sprintf("marking %d objects for deletion", len(objects)), nil, ops)
	return err
}

// DeleteDoomMarks removes doom marks, fenced by f.
func (s *Store) DeleteDoomMarks(ctx context.Context, f Fence, objects []string) error {
	if len(objects) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, len(objects))
	for i, o := range objects {
		ops[i] = clientv3.OpDelete(s.doomKey(o))
	}
	_, err := s.compactorTxn(ctx, f, fmt.Sprintf("removing %d doom marks", len(objects)), nil, ops)
	return err
}

// rangePages reads [from, end) in pages of pageSize keys.
func (s *Store) rangePages(ctx context.Context, from, end string, fn func(key string, value []byte, modRev int64) error) error {
	for {
		resp, err := s.cli.Get(ctx, from, clientv3.WithRange(end), clientv3.WithLimit(pageSize))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if err := fn(string(kv.Key), kv.Value, kv.ModRevision); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
