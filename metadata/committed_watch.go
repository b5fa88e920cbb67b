package metadata

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// OffsetChange is one committed offset written or deleted.
type OffsetChange struct {
	Group string
	// Offset is the committed offset; for a deletion only Topic and
	// Partition are set.
	Offset  CommittedOffset
	Deleted bool
}

// OffsetFollower follows every group's committed offsets through one etcd
// watch of the offsets/ prefix, so an agent can keep a history of commits
// for every group without being its coordinator.
type OffsetFollower struct {
	store *Store
	log   *slog.Logger
	fn    func(changes []OffsetChange, full bool)
	wg    sync.WaitGroup
}

// FollowOffsets calls fn with every committed offset stored (full is
// true: the complete set, replacing whatever fn knew), then with each
// change as it happens, until ctx ends. fn runs on one goroutine at a
// time, in etcd revision order. When the watch breaks (etcd compacted the
// revision it needed, or the connection dropped), fn gets a fresh full
// set. It returns once the first full set was delivered.
func (s *Store) FollowOffsets(ctx context.Context, log *slog.Logger, fn func(changes []OffsetChange, full bool)) (*OffsetFollower, error) {
	f := &OffsetFollower{store: s, log: log, fn: fn}
	rev, err := f.load(ctx)
	if err != nil {
		return nil, err
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		f.run(ctx, rev)
	}()
	return f, nil
}

// Wait blocks until the follower has stopped (after its context ends).
func (f *OffsetFollower) Wait() { f.wg.Wait() }

// parse decodes an offset key (and value, unless deleted).
func (f *OffsetFollower) parse(kv *mvccpb.KeyValue, deleted bool) (OffsetChange, bool) {
	prefix := f.store.key(prefixOffsets)
	rest, ok := strings.CutPrefix(string(kv.Key), prefix)
	if !ok {
		return OffsetChange{}, false
	}
	esc, _, _ := strings.Cut(rest, "/")
	group, err := url.PathUnescape(esc)
	if err != nil {
		return OffsetChange{}, false
	}
	topic, part, ok := f.store.parseOffsetKey(group, string(kv.Key))
	if !ok {
		return OffsetChange{}, false
	}
	ch := OffsetChange{Group: group, Deleted: deleted}
	if !deleted {
		o, err := DecodeCommittedOffset(string(kv.Key), kv.Value)
		if err != nil {
			f.log.Error("ignoring undecodable committed offset", "err", err)
			return OffsetChange{}, false
		}
		ch.Offset = o
	}
	ch.Offset.Topic, ch.Offset.Partition = topic, part
	return ch, true
}

func (f *OffsetFollower) load(ctx context.Context) (int64, error) {
	resp, err := f.store.cli.Get(ctx, f.store.key(prefixOffsets), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("loading committed offsets: %w", err)
	}
	changes := make([]OffsetChange, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if ch, ok := f.parse(kv, false); ok {
			changes = append(changes, ch)
		}
	}
	f.fn(changes, true)
	return resp.Header.Revision, nil
}

func (f *OffsetFollower) run(ctx context.Context, rev int64) {
	f.store.follow(ctx, f.log, "committed offsets", f.store.key(prefixOffsets), rev, func(events []*clientv3.Event, _ int64) {
		changes := make([]OffsetChange, 0, len(events))
		for _, ev := range events {
			if ch, ok := f.parse(ev.Kv, ev.Type == mvccpb.DELETE); ok {
				changes = append(changes, ch)
			}
		}
		if len(changes) > 0 {
			f.fn(changes, false)
		}
	}, f.load)
}
