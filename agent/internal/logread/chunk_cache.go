package logread

import (
	"container/list"
	"context"
	"math"
	"sync"
	"time"
)

// Object chunks.
//
// Reads are object-granular: a flush object holds a small extent of every
// partition written in its flush, so reading each partition's extent with
// its own GET would cost one request per extent (thousands per object at
// thousands of partitions). Instead the reader GETs whole chunks of an
// object — the whole object when it is at most wholeObjectMax, else
// chunkSize-aligned ranges — once, keeps their bytes as stored, and decodes
// every extent it needs from them. GETs per GiB read are then about
// 1 GiB / chunk size whatever the partition count. Extents of at least a
// chunk (per-partition data the compactor merged) are read on their own:
// they are worth a request each (Reader.direct).

// chunkKey names one chunk by its byte range in its object. Agents of a
// zone that share reads (PeerReader) name chunks alike as long as they
// read with the same chunk size.
type chunkKey struct {
	object     string
	start, end int64
}

// chunkSpan is a chunk's byte range in its object.
type chunkSpan struct {
	key        chunkKey
	start, end int64
}

// chunksOf appends to dst the chunks holding [offset, offset+length) of
// an object of size objSize. The last chunk of an object takes a remainder
// of less than half a chunk (an object is sealed once it reaches its
// target size, so it is usually a little larger than a multiple of it),
// rather than leaving it to a GET of its own.
func chunksOf(dst []chunkSpan, object string, objSize, offset, length, chunkSize int64) []chunkSpan {
	if objSize > 0 && objSize <= chunkSize+chunkSize/2 {
		return append(dst, chunkSpan{key: chunkKey{object, 0, objSize}, start: 0, end: objSize})
	}
	last := int64(math.MaxInt64) // the last chunk's index; unknown size: none
	if objSize > 0 {
		last = objSize / chunkSize
		if objSize-last*chunkSize < chunkSize/2 {
			last--
		}
	}
	for k := min(offset/chunkSize, last); k <= last && k*chunkSize < offset+length; k++ {
		end := (k + 1) * chunkSize
		if k == last {
			end = objSize
		}
		dst = append(dst, chunkSpan{key: chunkKey{object, k * chunkSize, end}, start: k * chunkSize, end: end})
	}
	return dst
}

// chunkCache is an LRU of object chunks as stored, with coalesced loads:
// concurrent readers of one chunk share one GET.
type chunkCache struct {
	maxBytes int64
	metrics  *readerMetrics

	mu       sync.Mutex
	bytes    int64
	lru      list.List // of *chunkItem, most recent at front
	items    map[chunkKey]*list.Element
	inflight map[chunkKey]*chunkCall
	// pinned counts the fetches relying on a chunk (cached or to come):
	// it is not evicted while they do.
	pinned map[chunkKey]int
}

type chunkItem struct {
	key  chunkKey
	data []byte
}

type chunkCall struct {
	done chan struct{}
	data []byte
	err  error
}

func newChunkCache(maxBytes int64, m *readerMetrics) *chunkCache {
	return &chunkCache{maxBytes: maxBytes, metrics: m, items: map[chunkKey]*list.Element{}, inflight: map[chunkKey]*chunkCall{}, pinned: map[chunkKey]int{}}
}

// cached reports whether a chunk is in the cache or being read.
func (c *chunkCache) cached(k chunkKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.items[k]
	_, loading := c.inflight[k]
	return ok || loading
}

// get returns a chunk's bytes from the cache, from a read in flight, or by
// calling load. The bytes are shared and must not be modified.
func (c *chunkCache) get(ctx context.Context, k chunkKey, load func(context.Context) ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.items[k]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		c.metrics.chunkHits.Inc()
		return el.Value.(*chunkItem).data, nil
	}
	if call, ok := c.inflight[k]; ok {
		c.mu.Unlock()
		c.metrics.chunkHits.Inc()
		select {
		case <-call.done:
			return call.data, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &chunkCall{done: make(chan struct{})}
	c.inflight[k] = call
	c.mu.Unlock()
	c.metrics.chunkMisses.Inc()

	// The read is shared: one caller's cancellation must not fail the
	// others.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	call.data, call.err = load(lctx)
	cancel()

	c.mu.Lock()
	delete(c.inflight, k)
	if call.err == nil && int64(len(call.data)) <= c.maxBytes/2 {
		el := c.lru.PushFront(&chunkItem{key: k, data: call.data})
		c.items[k] = el
		c.bytes += int64(len(call.data))
		c.evictLocked(el)
	}
	c.metrics.chunkBytes.Set(float64(c.bytes))
	c.mu.Unlock()
	close(call.done)
	return call.data, call.err
}

// evictLocked drops the least recently used chunks no fetch has pinned
// until the cache is within its size (pinned ones may hold it over), but
// never keep (the chunk just read).
func (c *chunkCache) evictLocked(keep *list.Element) {
	for el := c.lru.Back(); el != nil && c.bytes > c.maxBytes; {
		prev := el.Prev()
		if el == keep {
			break
		}
		if it := el.Value.(*chunkItem); c.pinned[it.key] == 0 {
			c.lru.Remove(el)
			delete(c.items, it.key)
			c.bytes -= int64(len(it.data))
		}
		el = prev
	}
}

// pin keeps a chunk cached (once read) until unpin.
func (c *chunkCache) pin(k chunkKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinned[k]++
}

// unpin releases what pin took.
func (c *chunkCache) unpin(keys []chunkKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if c.pinned[k]--; c.pinned[k] <= 0 {
			delete(c.pinned, k)
		}
	}
	c.evictLocked(nil)
}

// drop removes an object's chunks (it was found missing or corrupt).
func (c *chunkCache) drop(object string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.items {
		if k.object == object {
			c.lru.Remove(el)
			delete(c.items, k)
			c.bytes -= int64(len(el.Value.(*chunkItem).data))
		}
	}
	c.metrics.chunkBytes.Set(float64(c.bytes))
}
