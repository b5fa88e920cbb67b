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

// Fence is proof of holding a leadership (the compactor's or the
// exporter's): the leader key and its create revision. The leader's
// writes compare it in their transaction.
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

// Leadership is a won election (of the compactor, or of the exporter).
// Done is closed when the session behind it ends; writes made with its
// Fence fail from then on even if the holder has not noticed yet.
type Leadership struct {
	session  *concurrency.Session
	election *concurrency.Election
	fence    Fence
}

// CompactorLeadership is a won compactor election.
type CompactorLeadership = Leadership

// CampaignCompactor joins the compactor election under a session lease of
// ttl and blocks until id leads or ctx ends. Any number of compactors may
// campaign; one leads at a time, and the next takes over when the
// leader's lease lapses or it resigns.
func (s *Store) CampaignCompactor(ctx context.Context, id string, ttl time.Duration) (*CompactorLeadership, error) {
	return s.campaign(ctx, keyCompactorLeader, "compactor", id, ttl)
}

// campaign joins the election under prefix (of role) and blocks until id
// leads or ctx ends.
func (s *Store) campaign(ctx context.Context, prefix, role, id string, ttl time.Duration) (*Leadership, error) {
	secs := max(1, int(ttl/time.Second))
	session, err := concurrency.NewSession(s.cli, concurrency.WithTTL(secs), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("granting %s election lease: %w", role, err)
	}
	e := concurrency.NewElection(session, s.key(prefix))
	if err := e.Campaign(ctx, id); err != nil {
		session.Close()
		return nil, fmt.Errorf("campaigning for %s leadership: %w", role, err)
	}
	// Campaign returns once every older candidate is gone; if our own
	// lease lapsed meanwhile our key is gone too. Check before leading.
	f := Fence{key: e.Key(), rev: e.Rev()}
	resp, err := s.cli.Get(ctx, f.key)
	if err != nil {
		session.Close()
		return nil, fmt.Errorf("confirming %s leadership: %w", role, err)
	}
	if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != f.rev {
		session.Close()
		return nil, fmt.Errorf("%w: the %s election key vanished while campaigning", ErrNotLeader, role)
	}
	return &Leadership{session: session, election: e, fence: f}, nil
}

// Fence returns the fence every write of this leadership carries.
func (l *Leadership) Fence() Fence { return l.fence }

// Done is closed when the session ends: the leadership is over.
func (l *Leadership) Done() <-chan struct{} { return l.session.Done() }

// Resign gives up the leadership at once (rather than after the lease
// TTL) and ends the session.
func (l *Leadership) Resign(ctx context.Context) error {
	err := l.election.Resign(ctx)
	if cerr := l.session.Close(); err == nil {
		err = cerr
	}
	return err
}

// CompactorLeader returns the ID of the active compactor, if any.
func (s *Store) CompactorLeader(ctx context.Context) (id string, ok bool, err error) {
	return s.leader(ctx, keyCompactorLeader, "compactor")
}

// leader returns the ID of the leader of the election under prefix.
func (s *Store) leader(ctx context.Context, prefix, role string) (id string, ok bool, err error) {
	resp, err := s.cli.Get(ctx, s.key(prefix)+"/", append(clientv3.WithFirstCreate(), clientv3.WithLimit(1))...)
	if err != nil {
		return "", false, fmt.Errorf("reading %s leader: %w", role, err)
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
