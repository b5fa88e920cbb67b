package agent

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// abortedCache holds the aborted transactions of the topics this agent
// serves read_committed fetches of, so such a fetch does not read etcd. A
// topic's transactions are read from the aborted index
// (metadata.Store.TopicAbortedTxns, one range read however many
// partitions) on its first read_committed fetch and then kept current from
// the log entries the watermark watch delivers (each carries the aborts it
// committed), which it learns before the watermarks they raise. A watch
// that broke drops everything, and a shard read from etcd ahead of the
// watch drops its topic; topics are read again when next needed.
//
// Memory: at most maxTxns transactions are kept; beyond that the least
// recently read topics are dropped (and read from etcd again when next
// fetched).
type abortedCache struct {
	store   *metadata.Store
	maxTxns int
	loads   prometheus.Counter

	mu     sync.Mutex
	topics map[uuid.UUID]*abortedTopic
	total  int
}

type abortedTopic struct {
	id    uuid.UUID
	ready chan struct{} // closed once loaded (err says how)
	err   error
	parts map[int32][]metadata.AbortedTxn // by marker offset
	used  time.Time
}

// abortedCacheTxns bounds the transactions the cache holds (about 48
// bytes each).
const abortedCacheTxns = 256 << 10

func newAbortedCache(store *metadata.Store, reg prometheus.Registerer) *abortedCache {
	c := &abortedCache{
		store: store, maxTxns: abortedCacheTxns, topics: map[uuid.UUID]*abortedTopic{},
		loads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "aborted_index_loads_total",
			Help: "Topics whose aborted transactions were read from etcd for read_committed fetches (first use, or after the watch broke or the cache dropped them).",
		}),
	}
	if reg != nil {
		reg.MustRegister(c.loads)
	}
	return c
}

// observe adds the aborts of a log entry to the topics cached.
func (c *abortedCache) observe(sh metadata.ShardID, e *metadata.LogEntry) {
	if len(e.Aborted) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.topics[sh.Topic]; t != nil {
		for _, a := range e.Aborted {
			c.insertLocked(t, a)
		}
	}
}

// insertLocked adds a to its partition's list unless it is there (a load
// and the watch may both deliver it). Only topics in the cache count
// toward its bound (a reset may have dropped t while it loaded).
func (c *abortedCache) insertLocked(t *abortedTopic, a metadata.AbortedTxn) {
	txns := t.parts[a.Partition]
	i, found := slices.BinarySearchFunc(txns, a.Last, func(x metadata.AbortedTxn, last int64) int { return cmp.Compare(x.Last, last) })
	if found {
		return
	}
	t.parts[a.Partition] = slices.Insert(txns, i, a)
	if c.topics[t.id] == t {
		c.total++
	}
}

// forget drops topic id: a read from etcd raised its watermarks past
// entries the watch has not delivered, whose aborts the cache lacks. The
// next read_committed fetch loads the topic again, from etcd as it is
// after that read.
func (c *abortedCache) forget(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.topics[id]; t != nil {
		delete(c.topics, id)
		c.total -= countTxns(t)
	}
}

// reset drops every topic (the watch broke: aborts may have been missed).
func (c *abortedCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.topics = map[uuid.UUID]*abortedTopic{}
	c.total = 0
}

// between returns partition p of t's aborted transactions whose records
// overlap [from, upper), as metadata.Store.AbortedTxns does, from the
// cache.
func (c *abortedCache) between(ctx context.Context, t metadata.Topic, partition int32, from, upper int64) ([]metadata.AbortedTxn, error) {
	c.mu.Lock()
	at := c.topics[t.ID]
	if at == nil {
		// Registered before the load, so aborts the watch delivers
		// meanwhile are kept: the load and the watch together miss none.
		at = &abortedTopic{id: t.ID, ready: make(chan struct{}), parts: map[int32][]metadata.AbortedTxn{}}
		c.topics[t.ID] = at
		c.mu.Unlock()
		c.loads.Inc()
		loaded, err := c.store.TopicAbortedTxns(ctx, t.ID)
		c.mu.Lock()
		if err != nil {
			at.err = err
			if c.topics[t.ID] == at {
				delete(c.topics, t.ID)
				c.total -= countTxns(at)
			}
		} else {
			for _, txns := range loaded {
				for _, a := range txns {
					c.insertLocked(at, a)
				}
			}
		}
		close(at.ready)
		c.evictLocked()
	}
	at.used = time.Now()
	c.mu.Unlock()
	select {
	case <-at.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if at.err != nil {
		return nil, at.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	txns := at.parts[partition]
	var out []metadata.AbortedTxn
	i, _ := slices.BinarySearchFunc(txns, from, func(x metadata.AbortedTxn, from int64) int { return cmp.Compare(x.Last, from) })
	for ; i < len(txns); i++ {
		a := txns[i]
		if a.First < upper {
			out = append(out, a)
		}
		if a.Stable >= upper {
			break
		}
	}
	return out, nil
}

func countTxns(t *abortedTopic) int {
	n := 0
	for _, txns := range t.parts {
		n += len(txns)
	}
	return n
}

// evictLocked drops the least recently read loaded topics while the cache
// holds more than its bound.
func (c *abortedCache) evictLocked() {
	for c.total > c.maxTxns {
		var oldest *abortedTopic
		for _, t := range c.topics {
			select {
			case <-t.ready:
			default:
				continue // loading
			}
			if oldest == nil || t.used.Before(oldest.used) {
				oldest = t
			}
		}
		if oldest == nil {
			return
		}
		c.total -= countTxns(oldest)
		delete(c.topics, oldest.id)
	}
}
