package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watermarks is a partition's log start offset and high watermark.
type Watermarks struct {
	Start int64
	Next  int64 // high watermark
	// Revision is the etcd revision these were read at.
	Revision int64
}

// WatermarkWatcher keeps every partition's watermarks in memory, fresh
// through one etcd watch, and wakes waiters when a partition moves. Fetch
// long polls wait on it, so they wake on commit, not on a timer.
type WatermarkWatcher struct {
	store *Store
	log   *slog.Logger

	mu      sync.Mutex
	marks   map[PartitionID]Watermarks
	waiters map[PartitionID]map[*waiter]struct{}
	wg      sync.WaitGroup
}

type waiter struct{ ch chan struct{} }

// StartWatermarkWatcher loads all partitions' watermarks and follows them
// until ctx is done.
func (s *Store) StartWatermarkWatcher(ctx context.Context, log *slog.Logger) (*WatermarkWatcher, error) {
	w := &WatermarkWatcher{store: s, log: log, marks: map[PartitionID]Watermarks{}, waiters: map[PartitionID]map[*waiter]struct{}{}}
	rev, err := w.load(ctx)
	if err != nil {
		return nil, err
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		w.run(ctx, rev)
	}()
	return w, nil
}

// Wait blocks until the watcher has stopped (after its context ends).
func (w *WatermarkWatcher) Wait() { w.wg.Wait() }

type watermarkValue struct {
	Next  int64 `json:"next"`
	Start int64 `json:"start"`
}

func (w *WatermarkWatcher) decode(kv *mvccpb.KeyValue) (PartitionID, Watermarks, bool) {
	id, ok := parsePartitionKey(strings.TrimPrefix(string(kv.Key), w.store.key(prefixPartitions)))
	if !ok {
		return id, Watermarks{}, false
	}
	var v watermarkValue
	if err := json.Unmarshal(kv.Value, &v); err != nil || v.Next < v.Start || v.Start < 0 {
		w.log.Error("ignoring undecodable partition state", "key", string(kv.Key))
		return id, Watermarks{}, false
	}
	return id, Watermarks{Start: v.Start, Next: v.Next, Revision: kv.ModRevision}, true
}

func (w *WatermarkWatcher) load(ctx context.Context) (int64, error) {
	prefix := w.store.key(prefixPartitions)
	resp, err := w.store.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("loading partition watermarks: %w", err)
	}
	marks := make(map[PartitionID]Watermarks, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if id, m, ok := w.decode(kv); ok {
			marks[id] = m
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, m := range marks {
		w.setLocked(id, m)
	}
	// Partitions gone from etcd (topic deleted) reset to nothing.
	for id := range w.marks {
		if _, ok := marks[id]; !ok {
			delete(w.marks, id)
			w.wakeLocked(id)
		}
	}
	return resp.Header.Revision, nil
}

func (w *WatermarkWatcher) run(ctx context.Context, rev int64) {
	prefix := w.store.key(prefixPartitions)
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		for resp := range w.store.cli.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1)) {
			if err := resp.Err(); err != nil {
				w.log.Warn("watermark watch interrupted; reloading", "err", err)
				break
			}
			w.mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					if id, ok := parsePartitionKey(strings.TrimPrefix(string(ev.Kv.Key), prefix)); ok {
						delete(w.marks, id)
						w.wakeLocked(id)
					}
					continue
				}
				if id, m, ok := w.decode(ev.Kv); ok {
					w.setLocked(id, m)
				}
			}
			w.mu.Unlock()
			rev = resp.Header.Revision
		}
		cancel()
		for ctx.Err() == nil {
			r, err := w.load(ctx)
			if err == nil {
				rev = r
				break
			}
			w.log.Warn("reloading watermarks failed; retrying", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// setLocked records m unless a newer revision is already known, and wakes
// waiters on change.
func (w *WatermarkWatcher) setLocked(id PartitionID, m Watermarks) {
	if cur, ok := w.marks[id]; ok && cur.Revision >= m.Revision {
		return
	}
	w.marks[id] = m
	w.wakeLocked(id)
}

func (w *WatermarkWatcher) wakeLocked(id PartitionID) {
	for wt := range w.waiters[id] {
		select {
		case wt.ch <- struct{}{}:
		default:
		}
	}
}

// Observe records watermarks the caller learned first-hand (its own
// commit), so readers on this agent see them before the watch delivers
// them.
func (w *WatermarkWatcher) Observe(id PartitionID, m Watermarks) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setLocked(id, m)
}

// Get returns a partition's watermarks. A partition never written to has
// zero watermarks.
func (w *WatermarkWatcher) Get(id PartitionID) Watermarks {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.marks[id]
}

// Subscribe returns a channel that receives a value whenever any of the
// partitions' watermarks change, and a function that unsubscribes.
func (w *WatermarkWatcher) Subscribe(ids []PartitionID) (<-chan struct{}, func()) {
	wt := &waiter{ch: make(chan struct{}, 1)}
	w.mu.Lock()
	for _, id := range ids {
		set := w.waiters[id]
		if set == nil {
			set = map[*waiter]struct{}{}
			w.waiters[id] = set
		}
		set[wt] = struct{}{}
	}
	w.mu.Unlock()
	return wt.ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, id := range ids {
			if set := w.waiters[id]; set != nil {
				delete(set, wt)
				if len(set) == 0 {
					delete(w.waiters, id)
				}
			}
		}
	}
}
