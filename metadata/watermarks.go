package metadata

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watermarks is a partition's log start offset, high watermark and last
// stable offset.
type Watermarks struct {
	Start  int64
	Next   int64 // high watermark
	Stable int64 // last stable offset: Next unless a transaction is open
}

// WatermarkWatcher keeps the watermarks of the shards an agent uses in
// memory, fresh through two etcd watches (log entries and log starts),
// and wakes waiters when a shard moves. Fetch long polls wait on it, so
// they wake on commit, not on a timer.
//
// A shard is read from etcd the first time it is asked for, then kept
// from the watches. High watermarks and log starts only grow within a
// topic incarnation, so what the watcher holds is the largest value seen
// from any source (reads, watch events, the agent's own commits), and the
// order those arrive in does not matter.
type WatermarkWatcher struct {
	store *Store
	log   *slog.Logger
	hooks WatermarkHooks

	mu      sync.Mutex
	shards  map[ShardID]*shardMarks
	waiters map[ShardID]map[*waiter]struct{}
	// loading are the reads of shards under way (the latest begun per
	// shard): the fetches of a shard's partitions that find it not
	// followed yet, or need it fresh, share one.
	loading map[ShardID]*shardLoad
	wg      sync.WaitGroup
}

type shardLoad struct {
	began time.Time
	done  chan struct{}
	err   error
}

type shardMarks struct {
	seq     int64
	nexts   []int64
	stables []int64
	starts  []int64
	// loaded: read from etcd since the watches last started, so the
	// watches have kept it complete.
	loaded bool
	// readBegan is when the latest read from etcd merged in began.
	readBegan time.Time
}

type waiter struct{ ch chan struct{} }

// WatermarkHooks let the watcher's owner follow what it sees. Each is
// called without the watcher's lock held, on a watch goroutine or
// Observe's caller; either may be nil.
type WatermarkHooks struct {
	// OnEntry learns every log entry written (the agent's reader extends
	// its index windows with them), before the watermarks it raises are
	// visible.
	OnEntry func(ShardID, *LogEntry)
	// OnAhead learns that a read of a shard from etcd found entries the
	// watch has not delivered, before the watermarks that read raises are
	// visible: whoever keeps what entries carry (aborted transactions)
	// must not answer for offsets below those watermarks from what the
	// watch delivered alone.
	OnAhead func(ShardID)
	// OnReset is called when a watch broke: entries may have been missed.
	OnReset func()
}

// StartWatermarkWatcher starts following log entries and log starts until
// ctx is done.
func (s *Store) StartWatermarkWatcher(ctx context.Context, log *slog.Logger, hooks WatermarkHooks) (*WatermarkWatcher, error) {
	w := &WatermarkWatcher{store: s, log: log, hooks: hooks, shards: map[ShardID]*shardMarks{}, waiters: map[ShardID]map[*waiter]struct{}{}, loading: map[ShardID]*shardLoad{}}
	rev, err := w.currentRevision(ctx)
	if err != nil {
		return nil, err
	}
	for _, prefix := range []string{s.key(prefixLog), s.key(prefixStarts)} {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.run(ctx, prefix, rev)
		}()
	}
	return w, nil
}

// Wait blocks until the watcher has stopped (after its context ends).
func (w *WatermarkWatcher) Wait() { w.wg.Wait() }

func (w *WatermarkWatcher) currentRevision(ctx context.Context) (int64, error) {
	resp, err := w.store.cli.Get(ctx, w.store.key(keyCluster), clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// run follows prefix from rev+1. When the watch breaks, events may have
// been missed: every shard is marked for reloading and the watch starts
// again from the current revision.
func (w *WatermarkWatcher) run(ctx context.Context, prefix string, rev int64) {
	w.store.follow(ctx, w.log, "watermark", prefix, rev, func(events []*clientv3.Event, _ int64) {
		for _, ev := range events {
			w.apply(prefix, ev)
		}
	}, func(ctx context.Context) (int64, error) {
		w.mu.Lock()
		for sh, m := range w.shards {
			m.loaded = false
			w.wakeLocked(sh)
		}
		w.mu.Unlock()
		if w.hooks.OnReset != nil {
			w.hooks.OnReset()
		}
		return w.currentRevision(ctx)
	})
}

func (w *WatermarkWatcher) apply(prefix string, ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	rest := strings.TrimPrefix(key, prefix)
	if prefix == w.store.key(prefixStarts) {
		sh, ok := parseShardPart(rest)
		if !ok || ev.Type == mvccpb.DELETE {
			return
		}
		starts, err := decodeStarts(key, ev.Kv.Value)
		if err != nil {
			w.log.Error("ignoring undecodable log starts", "err", err)
			return
		}
		w.mu.Lock()
		w.mergeLocked(sh, 0, nil, nil, starts)
		w.mu.Unlock()
		return
	}
	sh, seq, ok := parseLogKey(rest)
	if !ok {
		return
	}
	if ev.Type == mvccpb.DELETE {
		// Retention and merges never remove a shard's latest entry; only
		// deleting the topic does.
		w.mu.Lock()
		if m := w.shards[sh]; m != nil && m.seq == seq {
			delete(w.shards, sh)
			w.wakeLocked(sh)
		}
		w.mu.Unlock()
		return
	}
	e, err := DecodeLogEntry(key, seq, ev.Kv.Value)
	if err != nil {
		w.log.Error("ignoring undecodable log entry", "err", err)
		return
	}
	w.Observe(sh, &e)
}

// mergeLocked raises what is known of sh to the given values (each only
// grows within a topic incarnation).
func (w *WatermarkWatcher) mergeLocked(sh ShardID, seq int64, nexts, stables, starts []int64) {
	m := w.shards[sh]
	if m == nil {
		m = &shardMarks{}
		w.shards[sh] = m
	}
	changed := false
	if seq > m.seq {
		m.seq = seq
	}
	m.nexts, changed = raise(m.nexts, nexts, changed)
	m.stables, changed = raise(m.stables, stables, changed)
	m.starts, changed = raise(m.starts, starts, changed)
	if changed {
		w.wakeLocked(sh)
	}
}

// raise returns cur with each element raised to the matching one of to.
func raise(cur, to []int64, changed bool) ([]int64, bool) {
	if len(to) > len(cur) {
		cur = append(cur, make([]int64, len(to)-len(cur))...)
		changed = true
	}
	for i, v := range to {
		if v > cur[i] {
			cur[i] = v
			changed = true
		}
	}
	return cur, changed
}

func (w *WatermarkWatcher) wakeLocked(sh ShardID) {
	for wt := range w.waiters[sh] {
		select {
		case wt.ch <- struct{}{}:
		default:
		}
	}
}

// Observe records a log entry the caller learned first-hand (its own
// commit), so readers on this agent see it before the watch delivers it.
//
// The hook learns the entry first: a reader that sees the watermarks it
// raises finds what it carries (its aborted transactions) already known.
func (w *WatermarkWatcher) Observe(sh ShardID, e *LogEntry) {
	if w.hooks.OnEntry != nil {
		w.hooks.OnEntry(sh, e)
	}
	w.mu.Lock()
	if e.Flags&EntryMerged == 0 {
		w.mergeLocked(sh, e.SeqLast, e.Nexts, e.StableOffsets(), nil)
	}
	w.mu.Unlock()
}

// ObserveStart records a log start offset the caller set itself.
func (w *WatermarkWatcher) ObserveStart(t Topic, p int32, start int64) {
	sh, slot := ShardOf(t.ID, t.ShardSize, p)
	starts := make([]int64, slot+1)
	starts[slot] = start
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mergeLocked(sh, 0, nil, nil, starts)
}

// Get returns partition p of t's watermarks, reading its shard from etcd
// if the watcher does not follow it yet. A partition never written to has
// zero watermarks.
func (w *WatermarkWatcher) Get(ctx context.Context, t Topic, p int32) (Watermarks, error) {
	sh, slot := ShardOf(t.ID, t.ShardSize, p)
	w.mu.Lock()
	m := w.shards[sh]
	if m == nil || !m.loaded {
		w.mu.Unlock()
		if err := w.load(ctx, sh); err != nil {
			return Watermarks{}, err
		}
		w.mu.Lock()
		if m = w.shards[sh]; m == nil {
			// The topic was deleted meanwhile.
			m = &shardMarks{}
		}
	}
	defer w.mu.Unlock()
	return m.marks(slot), nil
}

// load reads a shard the watcher does not follow yet, once however many
// ask at the same time.
func (w *WatermarkWatcher) load(ctx context.Context, sh ShardID) error {
	return w.read(ctx, sh, time.Time{})
}

// Refresh makes the watcher hold shard sh as etcd had it at some moment
// at or after since: it returns at once if a read from etcd that began at
// or after since has completed, waits for one under way that began then,
// and otherwise reads. The fetches that find an offset out of the range
// the watch has seen (the watch may lag) confirm it with etcd this way:
// however many partitions of a shard, and however many fetches, ask at
// once, etcd is read about once.
func (w *WatermarkWatcher) Refresh(ctx context.Context, sh ShardID, since time.Time) error {
	return w.read(ctx, sh, since)
}

// read reads shard sh from etcd unless a read that began at or after
// since has completed (not for the zero since: a first read) or is under
// way; concurrent callers share one read.
func (w *WatermarkWatcher) read(ctx context.Context, sh ShardID, since time.Time) error {
	w.mu.Lock()
	if m := w.shards[sh]; !since.IsZero() && m != nil && !m.readBegan.Before(since) {
		w.mu.Unlock()
		return nil
	}
	if l := w.loading[sh]; l != nil && !l.began.Before(since) {
		w.mu.Unlock()
		select {
		case <-l.done:
			return l.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l := &shardLoad{began: time.Now(), done: make(chan struct{})}
	w.loading[sh] = l
	w.mu.Unlock()
	// The read is shared: one caller's cancellation must not fail the
	// others.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	l.err = w.reload(lctx, sh, l.began)
	cancel()
	w.mu.Lock()
	if w.loading[sh] == l {
		delete(w.loading, sh)
	}
	w.mu.Unlock()
	close(l.done)
	return l.err
}

// Cached returns partition p of t's watermarks as known, without reading
// etcd, and whether its shard is followed.
func (w *WatermarkWatcher) Cached(t Topic, p int32) (Watermarks, bool) {
	sh, slot := ShardOf(t.ID, t.ShardSize, p)
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.shards[sh]
	if m == nil {
		return Watermarks{}, false
	}
	return m.marks(slot), m.loaded
}

func (m *shardMarks) marks(slot int32) Watermarks {
	var wm Watermarks
	if m == nil {
		return wm
	}
	if int(slot) < len(m.nexts) {
		wm.Next = m.nexts[slot]
	}
	wm.Stable = wm.Next
	if int(slot) < len(m.stables) {
		wm.Stable = min(m.stables[slot], wm.Next)
	}
	if int(slot) < len(m.starts) {
		wm.Start = min(m.starts[slot], wm.Next)
	}
	return wm
}

// reload reads a shard's state from etcd (a lagging watch, or the first
// use) and merges it into what the watcher knows; began is when the read
// began.
func (w *WatermarkWatcher) reload(ctx context.Context, sh ShardID, began time.Time) error {
	st, err := w.store.GetShardState(ctx, sh)
	if err != nil {
		return err
	}
	if w.hooks.OnAhead != nil {
		w.mu.Lock()
		m := w.shards[sh]
		ahead := st.Seq > 0 && (m == nil || st.Seq > m.seq)
		w.mu.Unlock()
		if ahead {
			w.hooks.OnAhead(sh)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mergeLocked(sh, st.Seq, st.Nexts, st.Stables, st.Starts)
	m := w.shards[sh]
	m.loaded = true
	if began.After(m.readBegan) {
		m.readBegan = began
	}
	return nil
}

// Subscribe returns a channel that receives a value whenever any of the
// shards' watermarks change, and a function that unsubscribes.
func (w *WatermarkWatcher) Subscribe(shards []ShardID) (<-chan struct{}, func()) {
	wt := &waiter{ch: make(chan struct{}, 1)}
	w.mu.Lock()
	for _, sh := range shards {
		set := w.waiters[sh]
		if set == nil {
			set = map[*waiter]struct{}{}
			w.waiters[sh] = set
		}
		set[wt] = struct{}{}
	}
	w.mu.Unlock()
	return wt.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, sh := range shards {
			if set := w.waiters[sh]; set != nil {
				delete(set, wt)
				if len(set) == 0 {
					delete(w.waiters, sh)
				}
			}
		}
	}
}

// Forget drops what the watcher holds of a topic (deleted).
func (w *WatermarkWatcher) Forget(topic uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for sh := range w.shards {
		if sh.Topic == topic {
			delete(w.shards, sh)
			w.wakeLocked(sh)
		}
	}
}
