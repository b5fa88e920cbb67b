package metadata

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/floe-io/floe/segments"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Garbage-collection marks: unreferenced stamps (when an object last lost
// an index reference) and doom marks (objects the collector deletes at its
// next pass), both written under the compactor's fence. compaction.go
// describes how they keep deletion safe.

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

// The collector's horizon. A doom mark stops commits of an object only
// while it exists, and the collector removes it with the object; a commit
// delayed past that (an agent paused, a request held in the network) would
// reference a deleted object. So before deleting objects the collector
// raises the horizon to the newest creation time among them, and every
// commit compares, in its transaction, that no horizon reaches its
// objects' creation: an object created at or before the horizon may be
// gone and is never committed. Creation times come from object keys
// (segments.ParseObjectKey), as the collector reads them; keys without
// one are never collected, and not compared.
//
//	compactor/horizon/<unix ms, 20 digits>   (empty value): the latest
//	                                         horizon; older ones removed

// prefixHorizon holds the collector's horizon, as the key's name.
const prefixHorizon = "compactor/horizon/"

func (s *Store) horizonKey(t time.Time) string {
	return s.key(prefixHorizon, fmt.Sprintf("%020d", t.UnixMilli()))
}

// parseHorizon returns the time a horizon key names.
func (s *Store) parseHorizon(key string) (time.Time, bool) {
	ms, err := strconv.ParseInt(strings.TrimPrefix(key, s.key(prefixHorizon)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(ms), true
}

// RaiseHorizon records, under the compactor's fence, that objects created
// at or before t may be deleted from now on: no commit of one succeeds
// after it returns. Call it before deleting them.
func (s *Store) RaiseHorizon(ctx context.Context, f Fence, t time.Time) error {
	prefix := s.key(prefixHorizon)
	key := s.horizonKey(t)
	_, err := s.compactorTxn(ctx, f, "raising the collector's horizon", nil, []clientv3.Op{
		clientv3.OpPut(key, ""),
		clientv3.OpDelete(prefix, clientv3.WithRange(key)), // older horizons
	})
	return err
}

// horizonCheck is a commit's comparison that no horizon reaches the
// oldest of its objects' creation times, and the read that finds the
// horizon when it fails. ok is false when none of objects has a creation
// time (nothing to compare).
func (s *Store) horizonCheck(objects []string) (cmp clientv3.Cmp, read clientv3.Op, ok bool) {
	var oldest time.Time
	for _, o := range objects {
		if created, _, valid := segments.ParseObjectKey(o); valid && (oldest.IsZero() || created.Before(oldest)) {
			oldest = created
		}
	}
	if oldest.IsZero() {
		return clientv3.Cmp{}, clientv3.Op{}, false
	}
	from, end := s.horizonKey(oldest), clientv3.GetPrefixRangeEnd(s.key(prefixHorizon))
	return clientv3.Compare(clientv3.CreateRevision(from), "=", 0).WithRange(end), clientv3.OpGet(from, clientv3.WithRange(end)), true
}

// pastHorizon reports which of objects a horizon read (horizonCheck's)
// puts at or before the horizon.
func (s *Store) pastHorizon(kvs []*mvccpb.KeyValue, objects []string) map[string]bool {
	var horizon time.Time
	for _, kv := range kvs {
		if t, ok := s.parseHorizon(string(kv.Key)); ok && t.After(horizon) {
			horizon = t
		}
	}
	out := map[string]bool{}
	for _, o := range objects {
		if created, _, valid := segments.ParseObjectKey(o); valid && !created.After(horizon) {
			out[o] = true
		}
	}
	return out
}
