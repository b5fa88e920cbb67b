package agent

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// abortedCache holds the aborted transactions of the partitions this
// agent serves read_committed fetches of, so such a fetch does not read
// etcd for each partition. A partition's list is read from the aborted
// index (metadata.Store.AbortedTxns) on its first read_committed fetch and
// then kept current from the log entries the watermark watch delivers
// (each carries the aborts it committed). A watch that broke drops
// everything; lists are read again when next needed.
//
// Memory: at most maxTxns transactions are kept; beyond that the least
// recently read partitions are dropped (and read from etcd again when
// next fetched).
type abortedCache struct {
	store   *metadata.Store
	maxTxns int
	loads   prometheus.Counter

	mu    sync.Mutex
	parts map[metadata.PartitionID]*abortedPart
	total int
}

type abortedPart struct {
	id    metadata.PartitionID
	ready chan struct{} // closed once loaded (err says how)
	err   error
	txns  []metadata.AbortedTxn // by marker offset
	used  time.Time
}

// abortedCacheTxns bounds the transactions the cache holds (about 48
// bytes each).
const abortedCacheTxns = 256 << 10

func newAbortedCache(store *metadata.Store, reg prometheus.Registerer) *abortedCache {
	c := &abortedCache{
		store: store, maxTxns: abortedCacheTxns, parts: map[metadata.PartitionID]*abortedPart{},
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "aborted_index_loads_total",
			Help: "Partitions whose aborted transactions were read from etcd for read_committed fetches (first use, or after the watch broke or the cache dropped them).",
		}),
	}
	if reg != nil {
		reg.MustRegister(c.loads)
	}
	return c
}

// observe adds the aborts of a log entry to the partitions cached.
func (c *abortedCache) observe(sh metadata.ShardID, e *metadata.LogEntry) {
	if len(e.Aborted) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range e.Aborted {
		if p := c.parts[metadata.PartitionID{Topic: sh.Topic, Partition: a.Partition}]; p != nil {
			c.insertLocked(p, a)
		}
	}
}

// insertLocked adds a to p's list unless it is there (a load and the
// watch may both deliver it). Only lists in the cache count toward its
// bound (a reset may have dropped p while it loaded).
func (c *abortedCache) insertLocked(p *abortedPart, a metadata.AbortedTxn) {
	i, found := slices.BinarySearchFunc(p.txns, a.Last, func(x metadata.AbortedTxn, last int64) int { return cmp.Compare(x.Last, last) })
	if !found {
		p.txns = slices.Insert(p.txns, i, a)
		if c.parts[p.id] == p {
			c.total++
		}
	}
}

// reset drops every list (the watch broke: aborts may have been missed).
func (c *abortedCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts = map[metadata.PartitionID]*abortedPart{}
	c.total = 0
}

// between returns partition p of t's aborted transactions whose records
// overlap [from, upper), as AbortedTxns does, from the cache.
func (c *abortedCache) between(ctx context.Context, t metadata.Topic, partition int32, from, upper int64) ([]metadata.AbortedTxn, error) {
	id := metadata.PartitionID{Topic: t.ID, Partition: partition}
	c.mu.Lock()
	p := c.parts[id]
	if p == nil {
		// Registered before the load, so aborts the watch delivers
		// meanwhile are kept: the load and the watch together miss none.
		p = &abortedPart{id: id, ready: make(chan struct{})}
		c.parts[id] = p
		c.mu.Unlock()
		c.loads.Inc()
		loaded, err := c.store.AbortedTxns(ctx, t.ID, partition, 0, math.MaxInt64)
		c.mu.Lock()
		if err != nil {
			p.err = err
			if c.parts[id] == p {
				delete(c.parts, id)
				c.total -= len(p.txns)
			}
		} else {
			for _, a := range loaded {
				c.insertLocked(p, a)
			}
		}
		close(p.ready)
		c.evictLocked()
	}
	p.used = time.Now()
	c.mu.Unlock()
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []metadata.AbortedTxn
	i, _ := slices.BinarySearchFunc(p.txns, from, func(x metadata.AbortedTxn, from int64) int { return cmp.Compare(x.Last, from) })
	for ; i < len(p.txns); i++ {
		a := p.txns[i]
		if a.First < upper {
			out = append(out, a)
		}
		if a.Stable >= upper {
			break
		}
	}
	return out, nil
}

// evictLocked drops the least recently read loaded partitions while the
// cache holds more than its bound.
func (c *abortedCache) evictLocked() {
	for c.total > c.maxTxns {
		var (
			oldest   metadata.PartitionID
			oldestAt time.Time
			found    bool
		)
		for id, p := range c.parts {
			select {
			case <-p.ready:
			default:
				continue // loading
			}
			if !found || p.used.Before(oldestAt) {
				oldest, oldestAt, found = id, p.used, true
			}
		}
		if !found {
			return
		}
		c.total -= len(c.parts[oldest].txns)
		delete(c.parts, oldest)
	}
}
