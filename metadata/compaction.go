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
	"slices"
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

// StoredIndexEntry is an index entry with its key's mod revision, which
// compactor writes compare.
type StoredIndexEntry struct {
	IndexEntry
	ModRevision int64
}

// PartitionIndex reads all of a partition's index entries, in offset
// order, in pages.
func (s *Store) PartitionIndex(ctx context.Context, id PartitionID) ([]StoredIndexEntry, error) {
	var out []StoredIndexEntry
	prefix := s.indexPrefix(id)
	err := s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, modRev int64) error {
		e, err := DecodeIndexEntry(key, value)
		if err != nil {
			return err
		}
		out = append(out, StoredIndexEntry{IndexEntry: e, ModRevision: modRev})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading index of %s: %w", id, err)
	}
	return out, nil
}

// ForEachIndexEntry calls fn for every index entry of the cluster, reading
// in pages (each page is consistent; the whole is not a snapshot). A
// value that does not decode stops the scan with ErrCorruptValue: a
// garbage collector must not guess what it references.
func (s *Store) ForEachIndexEntry(ctx context.Context, fn func(PartitionID, IndexEntry) error) error {
	prefix := s.key(prefixIndex)
	return s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, _ int64) error {
		rest := strings.TrimPrefix(key, prefix)
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			return fmt.Errorf("%w: %s: not an index key", ErrCorruptValue, key)
		}
		id, ok := parsePartitionKey(rest[:i])
		if !ok {
			return fmt.Errorf("%w: %s: not an index key", ErrCorruptValue, key)
		}
		e, err := DecodeIndexEntry(key, value)
		if err != nil {
			return err
		}
		return fn(id, e)
	})
}

// ForEachPartitionState calls fn for every partition that has state (was
// ever written to), reading in pages.
func (s *Store) ForEachPartitionState(ctx context.Context, fn func(PartitionID, PartitionState) error) error {
	prefix := s.key(prefixPartitions)
	return s.rangePages(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), func(key string, value []byte, modRev int64) error {
		id, ok := parsePartitionKey(strings.TrimPrefix(key, prefix))
		if !ok {
			return fmt.Errorf("%w: %s: not a partition key", ErrCorruptValue, key)
		}
		st, err := DecodePartitionState(key, value)
		if err != nil {
			return err
		}
		st.ModRevision = modRev
		return fn(id, st)
	})
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

// TrimOps is the number of etcd operations TrimLog needs to remove
// entries referencing the given objects: the state put, one delete per
// entry, one mark per distinct object. Callers keep it within etcd's
// --max-txn-ops.
func TrimOps(entries []IndexEntry) int {
	objs := map[string]bool{}
	for _, e := range entries {
		objs[e.Object] = true
	}
	return 1 + len(entries) + len(objs)
}

// TrimLog advances a partition's log start offset to start and deletes the
// index entries remove, in one transaction fenced by f that also compares
// the partition state st (as read, with its ModRevision) and stamps the
// removed entries' objects unreferenced. Every entry removed must end
// below the new start; start never moves backwards (a lower start keeps
// the current one) nor beyond the high watermark. An agent's commit or a
// DeleteRecords since st was read fails the compare with ErrConflict:
// re-read and plan again.
func (s *Store) TrimLog(ctx context.Context, f Fence, id PartitionID, st PartitionState, start int64, remove []IndexEntry) (PartitionState, error) {
	if st.ModRevision == 0 {
		return st, fmt.Errorf("trimming %s: the partition has no state", id)
	}
	start = max(start, st.Start)
	if start > st.Next {
		return st, fmt.Errorf("%w: trimming %s to %d beyond its high watermark %d", ErrOffsetOutOfRange, id, start, st.Next)
	}
	for _, e := range remove {
		if e.Last >= start {
			return st, fmt.Errorf("trimming %s: entry %d-%d holds offsets at or above the new start %d", id, e.First, e.Last, start)
		}
	}
	if start == st.Start && len(remove) == 0 {
		return st, nil
	}
	next := st.clone()
	next.Start = start
	key := s.partitionKey(id)
	ops := []clientv3.Op{clientv3.OpPut(key, next.value())}
	objects := make([]string, len(remove))
	for i, e := range remove {
		ops = append(ops, clientv3.OpDelete(s.indexKey(id, e.First)))
		objects[i] = e.Object
	}
	ops = append(ops, s.markOps(objects, time.Now())...)
	resp, err := s.compactorTxn(ctx, f, fmt.Sprintf("trimming %s to %d", id, start),
		[]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", st.ModRevision)}, ops)
	if err != nil {
		return st, err
	}
	next.ModRevision = resp.Header.Revision
	return next, nil
}

// SwapOps is the number of etcd operations (and compares) SwapIndexEntries
// needs to replace old: a delete or put per entry and a mark per distinct
// object (compares: one per entry and the fence).
func SwapOps(old []StoredIndexEntry) int {
	objs := map[string]bool{}
	for _, e := range old {
		objs[e.Object] = true
	}
	return len(old) + len(objs)
}

// SwapIndexEntries replaces a partition's consecutive index entries old
// with merged, which must hold exactly their records (First of the first,
// Last of the last, their accepted batches and no skips), in one
// transaction fenced by f that compares every old entry's mod revision and
// stamps the old objects unreferenced. Readers see either the old entries
// or the new one, never a gap or an overlap. If any old entry changed or
// went (retention removed it) the swap fails with ErrConflict and nothing
// is written.
func (s *Store) SwapIndexEntries(ctx context.Context, f Fence, id PartitionID, old []StoredIndexEntry, merged IndexEntry) error {
	if len(old) == 0 {
		return fmt.Errorf("swapping index entries of %s: nothing to replace", id)
	}
	var batches int64
	for i, e := range old {
		if i > 0 && e.First != old[i-1].Last+1 {
			return fmt.Errorf("swapping index entries of %s: entries %d-%d and %d-%d are not consecutive", id, old[i-1].First, old[i-1].Last, e.First, e.Last)
		}
		if e.ModRevision <= 0 {
			return fmt.Errorf("swapping index entries of %s: entry %d has no revision", id, e.First)
		}
		batches += int64(e.Batches)
	}
	switch {
	case merged.First != old[0].First || merged.Last != old[len(old)-1].Last:
		return fmt.Errorf("swapping index entries of %s: merged entry holds %d-%d, replaces %d-%d", id, merged.First, merged.Last, old[0].First, old[len(old)-1].Last)
	case int64(merged.Batches) != batches || len(merged.Skip) != 0:
		return fmt.Errorf("swapping index entries of %s: merged entry has %d batches (%d skipped), the old ones %d", id, merged.Batches, len(merged.Skip), batches)
	case merged.Object == "" || merged.Length <= 0:
		return fmt.Errorf("swapping index entries of %s: merged entry names no extent", id)
	case slices.ContainsFunc(old, func(e StoredIndexEntry) bool { return e.Object == merged.Object }):
		return fmt.Errorf("swapping index entries of %s: merged entry reuses object %s", id, merged.Object)
	}
	cmps := make([]clientv3.Cmp, 0, len(old))
	ops := make([]clientv3.Op, 0, SwapOps(old))
	objects := make([]string, len(old))
	for i, e := range old {
		key := s.indexKey(id, e.First)
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", e.ModRevision))
		if i == 0 {
			// The merged entry starts where the first old one did: same key.
			ops = append(ops, clientv3.OpPut(key, encode(merged)))
		} else {
			ops = append(ops, clientv3.OpDelete(key))
		}
		objects[i] = e.Object
	}
	ops = append(ops, s.markOps(objects, time.Now())...)
	_, err := s.compactorTxn(ctx, f, fmt.Sprintf("swapping %d index entries of %s for %s", len(old), id, merged.Object), cmps, ops)
	return err
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

// AdvanceLogStart moves a partition's log start offset up to offset, as
// Kafka's DeleteRecords does: -1 means the high watermark; an offset at or
// below the current start changes nothing; one beyond the high watermark
// (or another negative one) is ErrOffsetOutOfRange. It compares the
// partition's mod revision and retries on a concurrent commit. It returns
// the state after the call; index entries left below the start are
// removed by the compactor.
func (s *Store) AdvanceLogStart(ctx context.Context, id PartitionID, offset int64) (PartitionState, error) {
	key := s.partitionKey(id)
	for {
		st, err := s.GetPartitionState(ctx, id)
		if err != nil {
			return st, err
		}
		target := offset
		if target == -1 {
			target = st.Next
		}
		if target < 0 || target > st.Next {
			return st, fmt.Errorf("%w: %d is not between the log start %d and the high watermark %d of %s (-1 means the high watermark)", ErrOffsetOutOfRange, offset, st.Start, st.Next, id)
		}
		if target <= st.Start {
			return st, nil
		}
		next := st.clone()
		next.Start = target
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", st.ModRevision)).
			Then(clientv3.OpPut(key, next.value())).
			Commit()
		if err != nil {
			return st, fmt.Errorf("advancing the log start of %s: %w", id, err)
		}
		if resp.Succeeded {
			next.ModRevision = resp.Header.Revision
			return next, nil
		}
		// An agent committed meanwhile: re-read and retry.
	}
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
