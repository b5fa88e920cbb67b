package metadata

import (
	"context"
	"fmt"
	"strings"
	"time"

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
