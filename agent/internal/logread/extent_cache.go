package logread

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/floe-io/floe/metadata"
)

type extentKey struct {
	object string
	offset int64
	first  int64
}

// extentCache is an LRU of decoded extents with coalesced loads. Extents
// read ahead and not yet asked for are kept in an LRU of their own and
// evicted only after every extent already served. An item is one extent,
// or the extents of a chunk decoded together (chunk_extents.go).
//
// Extents read ahead (prefetch) and not yet asked for are counted in
// ahead, which a read ahead may not push past a quarter of the cache, so
// reading ahead for many partitions cannot evict what is about to be read.
type extentCache struct {
	maxBytes int64
	metrics  *readerMetrics
	aheadTTL time.Duration

	mu       sync.Mutex
	bytes    int64
	ahead    int64     // bytes read ahead and not yet asked for, or reserved for such reads
	lru      *itemList // items that fetches asked for, most recent at front
	aheadLRU *itemList // items read ahead and not asked for yet
	items    map[extentKey]*cacheItem
	inflight map[extentKey]*loadCall
	// chunkItems are the items of extents decoded together, by object.
	chunkItems map[string][]*cacheItem
	// roomWaiters are waiting for read-ahead room (waitRoom).
	roomWaiters []*roomWaiter
}

// roomWaiter's ch is closed once n bytes of the read-ahead budget are
// free.
type roomWaiter struct {
	n  int64
	ch chan struct{}
}

type cacheItem struct {
	key   extentKey
	val   *cachedExtent // one extent, or
	chunk *chunkExtents // the extents of a chunk decoded together
	ahead bool          // read ahead and not yet asked for; counted in extentCache.ahead
	added time.Time
	gone  bool // evicted; guarded by mu
	// prev and next link the item in lru or aheadLRU; guarded by mu.
	prev, next *cacheItem
}

// itemList is a doubly linked list of cache items, linked through the
// items themselves: a wide topic's cache holds hundreds of thousands of
// small extents, and a list element of their own would be one more
// allocation, and one more object for the collector to trace, each.
type itemList struct {
	root cacheItem // root.next is the front, root.prev the back
	n    int
}

func newItemList() *itemList {
	l := &itemList{}
	l.root.next, l.root.prev = &l.root, &l.root
	return l
}

func (l *itemList) Len() int { return l.n }

// back is the list's last item, nil when it is empty.
func (l *itemList) back() *cacheItem {
	if l.n == 0 {
		return nil
	}
	return l.root.prev
}

func (l *itemList) insertAfter(it, at *cacheItem) {
	it.prev, it.next = at, at.next
	at.next.prev = it
	at.next = it
	l.n++
}

func (l *itemList) pushFront(it *cacheItem) { l.insertAfter(it, &l.root) }
func (l *itemList) pushBack(it *cacheItem)  { l.insertAfter(it, l.root.prev) }

func (l *itemList) remove(it *cacheItem) {
	it.prev.next, it.next.prev = it.next, it.prev
	it.prev, it.next = nil, nil
	l.n--
}

func (l *itemList) moveToFront(it *cacheItem) {
	if l.root.next != it {
		l.remove(it)
		l.pushFront(it)
	}
}

// size is the memory the item holds.
func (it *cacheItem) size() int64 {
	if it.chunk != nil {
		return it.chunk.size
	}
	return it.val.size()
}

// extentRef is a cached extent: an item of its own (i < 0), or extent i
// of a chunk's item. The zero extentRef is none.
type extentRef struct {
	it *cacheItem
	i  int32
}

func (r extentRef) ok() bool { return r.it != nil }

// refLoading marks a ref (not ok) to an extent being loaded when it was
// looked up.
const refLoading = -2

// loading reports that the extent was being loaded when r was looked up.
func (r extentRef) loading() bool { return r.it == nil && r.i == refLoading }

// get returns the extent, valid after its eviction too; a chunk's is
// made in buf.
func (r extentRef) get(buf *cachedExtent) *cachedExtent {
	if r.i < 0 {
		return r.it.val
	}
	*buf = r.it.chunk.view(int(r.i))
	return buf
}

type loadCall struct {
	done chan struct{}
	val  *cachedExtent
	err  error
	used bool // a caller other than a read ahead waited for it; guarded by mu
}

func newExtentCache(maxBytes int64, m *readerMetrics) *extentCache {
	return &extentCache{maxBytes: maxBytes, metrics: m, aheadTTL: defaultAheadTTL, lru: newItemList(), aheadLRU: newItemList(), items: map[extentKey]*cacheItem{}, inflight: map[extentKey]*loadCall{}, chunkItems: map[string][]*cacheItem{}}
}

// findLocked returns key's extent if it is cached.
func (c *extentCache) findLocked(key extentKey) extentRef {
	if len(c.chunkItems) > 0 {
		for _, it := range c.chunkItems[key.object] {
			if i, ok := it.chunk.find(key); ok {
				return extentRef{it, int32(i)}
			}
		}
	}
	if it, ok := c.items[key]; ok {
		return extentRef{it, -1}
	}
	return extentRef{}
}

// has reports whether key is cached or being loaded.
func (c *extentCache) has(key extentKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, loading := c.inflight[key]
	return loading || c.findLocked(key).ok()
}

// appendMissing appends to dst the entries of es that are neither cached
// nor being loaded, with one hold of the lock.
func (c *extentCache) appendMissing(dst, es []metadata.IndexEntry) []metadata.IndexEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range es {
		key := keyOf(e)
		if _, loading := c.inflight[key]; !loading && !c.findLocked(key).ok() {
			dst = append(dst, e)
		}
	}
	return dst
}

// aheadMax is the part of the cache extents read ahead and not yet
// asked for may take: what one consumer's read decodes for the others of
// its group waits there until they come.
func (c *extentCache) aheadMax() int64 { return c.maxBytes / 2 }

// giveAheadLocked gives n bytes back to the read-ahead budget, waking
// the waiters (waitRoom) that now have room.
func (c *extentCache) giveAheadLocked(n int64) {
	c.ahead -= n
	if len(c.roomWaiters) == 0 || n <= 0 {
		return
	}
	free := c.aheadMax() - c.ahead
	kept := c.roomWaiters[:0]
	for _, w := range c.roomWaiters {
		if free >= w.n {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	clear(c.roomWaiters[len(kept):])
	c.roomWaiters = kept
}

// waitRoom returns a channel closed once n bytes of the read-ahead budget
// are free (at once if they are), and a function to stop waiting.
func (c *extentCache) waitRoom(n int64) (<-chan struct{}, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireAheadLocked()
	w := &roomWaiter{n: min(n, c.aheadMax()), ch: make(chan struct{})}
	if c.aheadMax()-c.ahead >= w.n {
		close(w.ch)
		return w.ch, func() {}
	}
	c.roomWaiters = append(c.roomWaiters, w)
	return w.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if i := slices.Index(c.roomWaiters, w); i >= 0 {
			c.roomWaiters = slices.Delete(c.roomWaiters, i, i+1)
		}
	}
}

// aheadFree is what is left of the read-ahead budget.
func (c *extentCache) aheadFree() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireAheadLocked()
	return max(c.aheadMax()-c.ahead, 0)
}

// reserveAhead takes n bytes of the read-ahead budget, if there are.
func (c *extentCache) reserveAhead(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ahead+n > c.aheadMax() {
		return false
	}
	c.ahead += n
	return true
}

// peek returns key's extent if it is cached, without counting a use
// (use does, when the fetch that planned it reads it); loading reports
// that a load of it is under way.
func (c *extentCache) peek(key extentKey) (ref extentRef, loading bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref := c.findLocked(key); ref.ok() {
		return ref, false
	}
	_, loading = c.inflight[key]
	return extentRef{}, loading
}

// useAll counts a fetch's use of extents, found by peek (an extent stays
// valid after its eviction), under one hold of the lock.
func (c *extentCache) useAll(refs []extentRef) {
	if len(refs) == 0 {
		return
	}
	c.mu.Lock()
	for _, ref := range refs {
		if !ref.it.gone {
			c.usedLocked(ref)
		}
	}
	c.mu.Unlock()
	c.metrics.cacheHits.Add(float64(len(refs)))
}

// peekAll is peek of each key, under one hold of the lock: refs[i] and
// loading[i] are keys[i]'s.
func (c *extentCache) peekAll(keys []extentKey, refs []extentRef, loading []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, key := range keys {
		if refs[i] = c.findLocked(key); refs[i].ok() {
			loading[i] = false
			continue
		}
		_, loading[i] = c.inflight[key]
	}
}

// usedLocked marks a cached extent used by a fetch. A chunk's item stops
// counting as read ahead once every extent in it was used.
func (c *extentCache) usedLocked(ref extentRef) {
	it := ref.it
	if ref.i >= 0 {
		ch := it.chunk
		if x := &ch.ext[ref.i]; !x.used {
			x.used = true
			if ch.unused--; ch.unused == 0 && it.ahead {
				it.ahead = false
				c.giveAheadLocked(ch.size)
				c.aheadLRU.remove(it)
				c.lru.pushFront(it)
				return
			}
		}
		if !it.ahead {
			c.lru.moveToFront(it)
		}
		return
	}
	if it.ahead {
		it.ahead = false
		c.giveAheadLocked(it.val.size())
		c.aheadLRU.remove(it)
		c.lru.pushFront(it)
	} else {
		c.lru.moveToFront(it)
	}
}

func (c *extentCache) get(ctx context.Context, key extentKey, load func(context.Context) (*cachedExtent, error)) (*cachedExtent, error) {
	return c.load(ctx, key, nil, load)
}

// aheadReservation is what is left of the bytes one read ahead took from
// the read-ahead budget (reserveAhead). The extents the read's chunks bring
// in for other partitions (offer) are counted against it first, so bytes
// reserved for a chunk's contents are not counted twice, once reserved and
// once decoded. left is read and changed only under the cache's lock.
type aheadReservation struct {
	left int64
	// own are the read ahead's entries (being loaded, so in flight): a
	// chunk whose extents are decoded together takes these along
	// (offerChunk).
	own map[extentKey]bool
}

// readAhead loads keys, with one load, into the cache for callers yet to
// come, with a reservation of the read-ahead budget (reserveAhead), whose
// rest it returns. Keys already cached or being loaded are not loaded
// again: load is told which to decode (want) and returns one extent per
// key (nil where not wanted). Callers asking for a key meanwhile wait for
// this load, as for any other.
func (c *extentCache) readAhead(ctx context.Context, keys []extentKey, res *aheadReservation, load func(ctx context.Context, want []bool) ([]*cachedExtent, error)) {
	want := make([]bool, len(keys))
	// The keys' loads end together: they share one channel.
	calls := make([]loadCall, len(keys))
	done := make(chan struct{})
	wanted := 0
	c.mu.Lock()
	for i, key := range keys {
		_, loading := c.inflight[key]
		if loading || c.findLocked(key).ok() {
			continue
		}
		want[i] = true
		wanted++
		calls[i].done = done
		c.inflight[key] = &calls[i]
	}
	if wanted == 0 {
		c.giveAheadLocked(res.left)
		res.left = 0
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.metrics.cacheMisses.Add(float64(wanted))

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	vals, err := load(lctx, want)
	cancel()

	c.mu.Lock()
	c.giveAheadLocked(res.left)
	res.left = 0
	for i, key := range keys {
		if !want[i] {
			continue
		}
		if calls[i].err = err; err == nil {
			calls[i].val = vals[i]
		}
		c.finishLocked(key, calls[i].val, calls[i].err, calls[i].used)
	}
	c.metrics.cacheBytes.Set(float64(c.bytes))
	c.mu.Unlock()
	close(done)
}

// offer caches an extent decoded ahead of any fetch asking for it (from a
// chunk read for another partition), if it is not cached or being loaded
// and the read ahead's reservation (res, nil for none) or else the
// read-ahead budget has room. taken says it was cached; full that the
// budget is spent.
func (c *extentCache) offer(key extentKey, val *cachedExtent, res *aheadReservation) (taken, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireAheadLocked()
	_, loading := c.inflight[key]
	cached := c.findLocked(key).ok()
	size := val.size()
	reserved := res != nil && res.left >= size
	if !reserved && c.ahead+size > c.aheadMax() {
		return false, true
	}
	if cached || loading || size > c.maxBytes/4 {
		return false, false
	}
	if reserved {
		// The reservation becomes the extent's (finishLocked counts it).
		res.left -= size
		c.giveAheadLocked(size)
	}
	c.finishLocked(key, val, nil, false)
	c.metrics.cacheBytes.Set(float64(c.bytes))
	return true, false
}

// defaultAheadTTL is how long an extent read ahead may wait to be asked
// for before it counts as served (and may be evicted like one): its
// readers may be gone, and it must not hold the read-ahead budget
// forever.
const defaultAheadTTL = 5 * time.Second

// expireAheadLocked demotes extents read ahead longer than aheadTTL ago.
func (c *extentCache) expireAheadLocked() {
	now := time.Now()
	for it := c.aheadLRU.back(); it != nil; it = c.aheadLRU.back() {
		if now.Sub(it.added) < c.aheadTTL {
			return
		}
		c.aheadLRU.remove(it)
		c.giveAheadLocked(it.size())
		it.ahead = false
		c.lru.pushBack(it)
	}
}

// errNotReady: an extent asked for only if ready is neither cached nor
// being loaded.
var errNotReady = errors.New("extent neither cached nor being loaded")

// load is get: from the cache, from a load in flight, or by calling
// load (nil: not, and errNotReady).
// An extent of a chunk's item is made in buf (nil: a new one).
func (c *extentCache) load(ctx context.Context, key extentKey, buf *cachedExtent, load func(context.Context) (*cachedExtent, error)) (*cachedExtent, error) {
	c.mu.Lock()
	if ref := c.findLocked(key); ref.ok() {
		c.usedLocked(ref)
		c.mu.Unlock()
		c.metrics.cacheHits.Inc()
		if buf == nil {
			buf = new(cachedExtent)
		}
		return ref.get(buf), nil
	}
	if call, ok := c.inflight[key]; ok {
		call.used = true
		c.mu.Unlock()
		c.metrics.cacheCoalesced.Inc()
		select {
		case <-call.done:
			return call.val, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if load == nil {
		c.mu.Unlock()
		return nil, errNotReady
	}
	call := &loadCall{done: make(chan struct{}), used: true}
	c.inflight[key] = call
	c.mu.Unlock()
	c.metrics.cacheMisses.Inc()

	// The load is shared: do not let one caller's cancellation fail the
	// others.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	call.val, call.err = load(lctx)
	cancel()

	c.mu.Lock()
	c.finishLocked(key, call.val, call.err, call.used)
	c.metrics.cacheBytes.Set(float64(c.bytes))
	c.mu.Unlock()
	close(call.done)
	return call.val, call.err
}

// finishLocked ends key's load, of val or failed with err: the extent is
// cached (if it may be), counted as read ahead unless used (a caller
// other than a read ahead asked for it), and the least recently used
// extents are evicted to make room.
func (c *extentCache) finishLocked(key extentKey, val *cachedExtent, err error, used bool) {
	delete(c.inflight, key)
	if err != nil || val == nil {
		return
	}
	if ref := c.findLocked(key); ref.ok() {
		// A chunk's item holds it (a read ahead's own extent, decoded with
		// the chunk's others).
		if used {
			c.usedLocked(ref)
		}
		return
	}
	size := val.size()
	if size > c.maxBytes/4 {
		if !used {
			c.metrics.prefetchWasted.Inc()
		}
		return
	}
	it := &cacheItem{key: key, val: val, ahead: !used, added: time.Now()}
	c.items[key] = it
	if it.ahead {
		c.ahead += size
		c.aheadLRU.pushFront(it)
	} else {
		c.lru.pushFront(it)
	}
	c.bytes += size
	c.evictLocked()
}

// evictLocked evicts the least recently used items until the cache is
// within its size. Items already served go first: one read ahead is about
// to be asked for, one served may never be again.
func (c *extentCache) evictLocked() {
	for c.bytes > c.maxBytes {
		from := c.lru
		if from.Len() == 0 {
			from = c.aheadLRU
		}
		old := from.back()
		if old == nil {
			return
		}
		from.remove(old)
		old.gone = true
		c.bytes -= old.size()
		if old.ahead {
			c.giveAheadLocked(old.size())
		}
		if ch := old.chunk; ch != nil {
			wasted := 0
			for _, x := range ch.ext {
				if !x.used {
					wasted++
				}
			}
			if old.ahead {
				c.metrics.prefetchWasted.Add(float64(wasted))
			}
			its := c.chunkItems[ch.object]
			if i := slices.Index(its, old); i >= 0 {
				its = slices.Delete(its, i, i+1)
			}
			if len(its) == 0 {
				delete(c.chunkItems, ch.object)
			} else {
				c.chunkItems[ch.object] = its
			}
			continue
		}
		delete(c.items, old.key)
		if old.ahead {
			c.metrics.prefetchWasted.Inc()
		}
	}
}

// chunkView returns key's extent if a chunk's item holds it.
func (c *extentCache) chunkView(key extentKey) (*cachedExtent, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ref := c.findLocked(key); ref.ok() && ref.i >= 0 {
		v := ref.it.chunk.view(int(ref.i))
		return &v, true
	}
	return nil, false
}

// takeAheadRoom takes the room a chunk's extents decoded ahead may use,
// before they are decoded: what is left of a read ahead's reservation for
// them (res, nil for none), then of the read-ahead budget, no more than
// itemMax. It counts as read ahead until offerChunk gives it back, so
// chunks decoded at once share the budget instead of each finding all of
// it free.
func (c *extentCache) takeAheadRoom(res *aheadReservation) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireAheadLocked()
	limit := c.itemMax()
	var room int64
	if res != nil {
		room = min(res.left, limit) // counted in ahead already
		res.left -= room
	}
	extra := min(max(c.aheadMax()-c.ahead, 0), limit-room)
	c.ahead += extra
	return room + extra
}

// itemMax is the largest item of extents decoded together: an eighth of
// the read-ahead budget.
func (c *extentCache) itemMax() int64 { return min(c.maxBytes/4, c.aheadMax()/8) }

// offerChunk gives back room (takeAheadRoom) and caches ch, a chunk's
// extents decoded within it (nil: none), ahead of any fetch asking for
// them. It returns how many it holds for others than the read ahead res
// (nil for none) that were not cached or being loaded already (those
// count as used).
func (c *extentCache) offerChunk(ch *chunkExtents, room int64, res *aheadReservation) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.giveAheadLocked(room)
	if ch == nil {
		return 0
	}
	n, own := 0, 0
	for i := range ch.ext {
		key := extentKey{ch.object, ch.ext[i].offset, ch.ext[i].first}
		if res != nil && res.own[key] {
			own++ // the read ahead's own (being loaded): it finds it here
			continue
		}
		if _, loading := c.inflight[key]; loading || c.findLocked(key).ok() {
			ch.ext[i].used = true
			continue
		}
		n++
	}
	if n+own == 0 || ch.size > room {
		return 0
	}
	it := &cacheItem{key: extentKey{ch.object, ch.start, -1}, chunk: ch, ahead: true, added: time.Now()}
	ch.unused = n + own
	c.ahead += ch.size
	c.aheadLRU.pushFront(it)
	c.chunkItems[ch.object] = append(c.chunkItems[ch.object], it)
	c.bytes += ch.size
	c.evictLocked()
	c.metrics.cacheBytes.Set(float64(c.bytes))
	return n
}
