package metadata

import (
	"context"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// follow watches prefix from rev+1 until ctx is done, calling apply with
// each response's events and the revision they bring the follower to.
// That revision comes from the events' own revisions (or a progress
// notification), not the response header: a watch catching up gets later
// events in later responses, and the header carries the store's current
// revision.
//
// When the watch breaks (etcd compacted past rev, restarted, or lost its
// leader), events may have been missed: reload reads the prefix's state
// again (or marks what was learnt stale) and returns the revision to
// watch from; a failed reload is retried every second. what names the
// watch in logs.
func (s *Store) follow(ctx context.Context, log *slog.Logger, what, prefix string, rev int64, apply func(events []*clientv3.Event, rev int64), reload func(context.Context) (int64, error)) {
	name := strings.TrimPrefix(prefix, s.root)
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		broken := false
		for resp := range s.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify()) {
			if err := resp.Err(); err != nil {
				log.Warn(what+" watch interrupted; reloading", "prefix", name, "err", err)
				broken = true
				break
			}
			seen := rev
			if resp.IsProgressNotify() {
				seen = max(seen, resp.Header.Revision)
			}
			for _, ev := range resp.Events {
				seen = max(seen, ev.Kv.ModRevision)
			}
			apply(resp.Events, seen)
			rev = seen
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if !broken {
			// The channel closed without an error: etcd went away.
			log.Warn(what+" watch closed; reloading", "prefix", name)
		}
		for ctx.Err() == nil {
			r, err := reload(ctx)
			if err == nil {
				rev = r
				break
			}
			log.Warn("reloading "+what+" failed; retrying", "prefix", name, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}
