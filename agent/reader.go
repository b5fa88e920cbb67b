package agent

import (
	"cmp"
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Errors the reader gives fetches; kafkaError maps them.
var (
	// errCorruptObject: a segment object failed its checksums or does not
	// match its index entry.
	errCorruptObject = errors.New("segment object is corrupt")
	// errMissingObject: an index entry names an object the bucket does not
	// have.
	errMissingObject = errors.New("segment object is missing")
)

// reader turns index entries into served batches. It owns two caches:
//
//   - a window of each partition's index entries, loaded from etcd on
//     demand and extended as the high watermark moves; it is reloaded
//     when older than indexRefresh, well inside the compactor's grace
//     period, so entries replaced by a merge are dropped before their
//     objects are deleted;
//   - the decoded batches of recently read extents, with base offsets
//     already assigned, in an LRU bounded by cacheBytes. Concurrent
//     misses for one extent share one GET.
type reader struct {
	store   *metadata.Store
	bucket  segments.BucketReader
	log     *slog.Logger
	metrics *readerMetrics

	indexRefresh time.Duration

	idxMu sync.Mutex
	idx   map[metadata.PartitionID]*partIndex

	cache *extentCache

	// prefetchSlots bounds the extents read ahead at once, across the
	// agent; a read ahead that finds no slot is skipped, never queued.
	prefetchSlots chan struct{}

	posMu sync.Mutex
	pos   map[metadata.PartitionID]readPos // where fetches last read each partition
}

// readPos is where a fetch last read a partition, and when.
type readPos struct {
	next int64
	at   time.Time
}

// Partitions read within activeFor count as being read: a read ahead of
// an object takes their extents in it too. Past maxActive partitions,
// none do (the scan would cost more than it saves).
const (
	activeFor = 10 * time.Second
	maxActive = 1024
)

// maxPrefetches is how many extents the agent reads ahead at once.
const maxPrefetches = 16

// indexWindow is how many index entries are loaded at a time.
const indexWindow = 256

type partIndex struct {
	mu      sync.Mutex
	entries []metadata.IndexEntry // contiguous: each First is the previous Last+1
	loaded  time.Time
}

func newReader(store *metadata.Store, bucket segments.BucketReader, cacheBytes int64, log *slog.Logger, m *readerMetrics) *reader {
	return &reader{
		store:        store,
		bucket:       bucket,
		log:          log,
		metrics:      m,
		indexRefresh: time.Minute,
		idx:          map[metadata.PartitionID]*partIndex{},
		cache:        newExtentCache(cacheBytes, m),

		prefetchSlots: make(chan struct{}, maxPrefetches),
		pos:           map[metadata.PartitionID]readPos{},
	}
}

// noteRead records that a fetch read partition id up to next.
func (r *reader) noteRead(id metadata.PartitionID, next int64) {
	now := time.Now()
	r.posMu.Lock()
	defer r.posMu.Unlock()
	r.pos[id] = readPos{next: next, at: now}
	if len(r.pos) > 2*maxActive {
		for id, p := range r.pos {
			if now.Sub(p.at) > activeFor {
				delete(r.pos, id)
			}
		}
	}
}

// neighbours returns the extents, in the objects of entries, of the other
// partitions fetches are reading: the next few entries from where each
// was last read, as the agent's cached index has them (etcd is not read).
// A consumer group reads its partitions in step, with each member asking
// for its own: reading the extents of the whole group from an object in
// one GET serves the other members from the cache.
func (r *reader) neighbours(entries []metadata.IndexEntry) []metadata.IndexEntry {
	objects := map[string]bool{}
	for _, e := range entries {
		objects[e.Object] = true
	}
	now := time.Now()
	type active struct {
		id   metadata.PartitionID
		next int64
	}
	var reading []active
	r.posMu.Lock()
	for id, p := range r.pos {
		if now.Sub(p.at) <= activeFor {
			reading = append(reading, active{id, p.next})
		}
	}
	r.posMu.Unlock()
	if len(reading) > maxActive {
		return nil
	}
	var out []metadata.IndexEntry
	for _, a := range reading {
		r.idxMu.Lock()
		pi := r.idx[a.id]
		r.idxMu.Unlock()
		if pi == nil {
			continue
		}
		pi.mu.Lock()
		i, _ := slices.BinarySearchFunc(pi.entries, a.next, func(e metadata.IndexEntry, off int64) int {
			if e.Last < off {
				return -1
			}
			return 0
		})
		for _, e := range pi.entries[i:min(i+4, len(pi.entries))] {
			if objects[e.Object] && !r.cache.has(extentKey{e.Object, e.Offset, e.First}) {
				out = append(out, e)
			}
		}
		pi.mu.Unlock()
	}
	return out
}

// planPrefetch returns the entries a read of a partition from offset
// would take, up to about want bytes and at most loads of them (0: no
// limit), that are neither cached nor being read: what is worth reading
// ahead.
func (r *reader) planPrefetch(ctx context.Context, id metadata.PartitionID, offset, hw, want int64, loads int) []metadata.IndexEntry {
	if want <= 0 || offset >= hw {
		return nil
	}
	entries, err := r.entries(ctx, id, offset, hw)
	if err != nil {
		return nil // the read itself will report it
	}
	var out []metadata.IndexEntry
	for _, e := range entries {
		if want <= 0 || loads > 0 && len(out) == loads {
			break
		}
		// Stored bytes stand in for decoded ones, which are at least as
		// many: the estimate errs toward reading one extent more.
		want -= e.Length
		if !r.cache.has(extentKey{e.Object, e.Offset, e.First}) {
			out = append(out, e)
		}
	}
	return out
}

// maxSpan bounds the bytes one coalesced GET reads. Extents of one
// object less than maxGap apart are read with one GET, the bytes between
// them (extents cached or being read already, or of partitions nobody
// reads) read and dropped: a GET costs more than a MiB of transfer, in
// requests billed and in the store's work per request.
const (
	maxSpan = 16 << 20
	maxGap  = 1 << 20
)

// prefetch reads entries into the cache in the background, so their GETs
// overlap each other and the client instead of running one after another
// when fetches ask for them: the extents of every partition of a fetch
// before the fetch reads them in turn, and the next extents of the
// partitions it served. Entries of one object (partitions of one flush)
// within maxGap of each other are read with one GET of up to maxSpan bytes,
// so a consumer of many partitions costs about a GET per object, not one
// per extent; the extents in those objects of the other partitions being
// read (neighbours) are taken along, so a consumer group's members, each
// asking for a few partitions, cost about a GET per object together. What
// is read ahead and not yet asked for stays within a quarter of the cache
// (extentCache.ahead), with at most maxPrefetches
// GETs at a time per agent. It never blocks; goroutines it starts are
// added to wg and end with their GET.
func (r *reader) prefetch(ctx context.Context, wg *sync.WaitGroup, entries []metadata.IndexEntry) {
	if len(entries) == 0 {
		return
	}
	entries = append(entries, r.neighbours(entries)...)
	slices.SortFunc(entries, func(a, b metadata.IndexEntry) int {
		if c := strings.Compare(a.Object, b.Object); c != 0 {
			return c
		}
		return cmp.Compare(a.Offset, b.Offset)
	})
	entries = slices.CompactFunc(entries, func(a, b metadata.IndexEntry) bool {
		return a.Object == b.Object && a.Offset == b.Offset
	})
	for len(entries) > 0 {
		n, size := nextSpan(entries)
		span := entries[:n:n]
		entries = entries[n:]
		// Reserve the stored size (the decoded one replaces it once
		// read), and stop when the budget or the slots run out.
		if !r.cache.reserveAhead(size) {
			return
		}
		select {
		case r.prefetchSlots <- struct{}{}:
		default:
			r.cache.reserveAhead(-size)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-r.prefetchSlots }()
			r.metrics.prefetches.Add(float64(len(span)))
			keys := make([]extentKey, len(span))
			for i, e := range span {
				keys[i] = extentKey{e.Object, e.Offset, e.First}
			}
			r.cache.readAhead(ctx, keys, size, func(ctx context.Context, want []bool) ([]*cachedExtent, error) {
				return r.loadSpan(ctx, span, want)
			})
		}()
	}
}

// nextSpan returns how many of entries, sorted by object and offset, the
// first GET reads, and the bytes it reads: those of the first entry's
// object less than maxGap apart, up to maxSpan bytes in all.
func nextSpan(entries []metadata.IndexEntry) (n int, size int64) {
	first := entries[0]
	n, size = 1, first.Length
	for ; n < len(entries) && entries[n].Object == first.Object; n++ {
		prevEnd := entries[n-1].Offset + entries[n-1].Length
		end := entries[n].Offset + entries[n].Length
		if entries[n].Offset-prevEnd > maxGap || end-first.Offset > maxSpan {
			break
		}
		size = end - first.Offset
	}
	return n, size
}

// loadSpan reads the extents of entries, which are in one object in
// order, with one GET from the first to the end of the last, and decodes
// those wanted.
func (r *reader) loadSpan(ctx context.Context, entries []metadata.IndexEntry, want []bool) ([]*cachedExtent, error) {
	first, last := entries[0], entries[len(entries)-1]
	data, err := r.readRange(ctx, first.Object, first.Offset, last.Offset+last.Length-first.Offset)
	if err != nil {
		return nil, err
	}
	out := make([]*cachedExtent, len(entries))
	for i, e := range entries {
		if !want[i] {
			continue
		}
		lo, hi := e.Offset-first.Offset, e.Offset-first.Offset+e.Length
		hi = min(hi, int64(len(data)))
		if out[i], err = r.decodeEntry(e, data[lo:hi:hi]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// entries returns index entries that hold offset and the ones after it,
// below hw.
func (r *reader) entries(ctx context.Context, id metadata.PartitionID, offset, hw int64) ([]metadata.IndexEntry, error) {
	r.idxMu.Lock()
	pi := r.idx[id]
	if pi == nil {
		pi = &partIndex{}
		r.idx[id] = pi
	}
	r.idxMu.Unlock()

	pi.mu.Lock()
	defer pi.mu.Unlock()
	covers := func() bool {
		n := len(pi.entries)
		return n > 0 && pi.entries[0].First <= offset && offset <= pi.entries[n-1].Last+1
	}
	if !covers() || time.Since(pi.loaded) > r.indexRefresh {
		if err := r.loadWindow(ctx, id, pi, offset); err != nil {
			return nil, err
		}
	}
	if n := len(pi.entries); n > 0 && pi.entries[n-1].Last+1 < hw && pi.entries[n-1].Last < offset+indexWindow {
		if err := r.extendWindow(ctx, id, pi); err != nil {
			return nil, err
		}
	}
	i, _ := slices.BinarySearchFunc(pi.entries, offset, func(e metadata.IndexEntry, off int64) int {
		switch {
		case e.Last < off:
			return -1
		case e.First > off:
			return 1
		}
		return 0
	})
	out := pi.entries[i:]
	return slices.Clip(out), nil
}

func (r *reader) loadWindow(ctx context.Context, id metadata.PartitionID, pi *partIndex, offset int64) error {
	start := time.Now()
	from := offset
	if e, ok, err := r.store.IndexEntryBefore(ctx, id, offset); err != nil {
		return err
	} else if ok {
		from = e.First
	}
	entries, err := r.store.IndexEntries(ctx, id, from, indexWindow)
	if err != nil {
		return err
	}
	r.metrics.indexLoads.Inc()
	r.metrics.indexLatency.Observe(time.Since(start).Seconds())
	pi.entries = contiguousPrefix(entries)
	pi.loaded = time.Now()
	return nil
}

func (r *reader) extendWindow(ctx context.Context, id metadata.PartitionID, pi *partIndex) error {
	last := pi.entries[len(pi.entries)-1]
	more, err := r.store.IndexEntries(ctx, id, last.Last+1, indexWindow)
	if err != nil {
		return err
	}
	r.metrics.indexLoads.Inc()
	if len(more) == 0 || more[0].First != last.Last+1 {
		// The index changed under us (a merge); start over next time.
		pi.loaded = time.Time{}
		return nil
	}
	pi.entries = append(pi.entries, contiguousPrefix(more)...)
	if len(pi.entries) > 4*indexWindow {
		pi.entries = slices.Clone(pi.entries[len(pi.entries)-2*indexWindow:])
	}
	return nil
}

// contiguousPrefix returns the leading entries that follow each other
// without a gap.
func contiguousPrefix(entries []metadata.IndexEntry) []metadata.IndexEntry {
	for i := 1; i < len(entries); i++ {
		if entries[i].First != entries[i-1].Last+1 {
			return entries[:i]
		}
	}
	return entries
}

// observe adds an index entry this agent just committed to the
// partition's cached window, when it follows on from it, so fetches
// tailing the partition find it without reading etcd (as the watermark
// watcher learns the agent's own commits first-hand). A partition whose
// window is not cached is left to load on demand.
func (r *reader) observe(id metadata.PartitionID, e metadata.IndexEntry) {
	r.idxMu.Lock()
	pi := r.idx[id]
	r.idxMu.Unlock()
	if pi == nil {
		return
	}
	pi.mu.Lock()
	defer pi.mu.Unlock()
	n := len(pi.entries)
	if n == 0 || pi.entries[n-1].Last+1 != e.First {
		return
	}
	pi.entries = append(pi.entries, e)
	if len(pi.entries) > 4*indexWindow {
		pi.entries = slices.Clone(pi.entries[len(pi.entries)-2*indexWindow:])
	}
}

// invalidate drops a partition's cached index.
func (r *reader) invalidate(id metadata.PartitionID) {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	delete(r.idx, id)
}

// extent returns an index entry's batches, offsets assigned, from the
// cache or the bucket.
func (r *reader) extent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	return r.cache.get(ctx, extentKey{e.Object, e.Offset, e.First}, func(ctx context.Context) (*cachedExtent, error) {
		return r.loadExtent(ctx, e)
	})
}

func (r *reader) loadExtent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	data, err := r.readRange(ctx, e.Object, e.Offset, e.Length)
	if err != nil {
		return nil, err
	}
	return r.decodeEntry(e, data)
}

// readRange reads length bytes of object at offset with one ranged GET
// (fewer if the object is shorter: callers check).
func (r *reader) readRange(ctx context.Context, object string, offset, length int64) ([]byte, error) {
	start := time.Now()
	rc, err := r.bucket.GetRange(ctx, object, offset, length)
	if err != nil {
		if errors.Is(err, segments.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", errMissingObject, object)
		}
		return nil, fmt.Errorf("reading %s: %w", object, err)
	}
	// Read into a buffer of the range's size (io.ReadAll would grow one
	// from 512 bytes), within reason: the length comes from etcd.
	data := make([]byte, min(length, maxPrealloc)+1)
	n, err := io.ReadFull(rc, data)
	if err == nil && int64(n) < length {
		var rest []byte
		rest, err = io.ReadAll(rc)
		data = append(data[:n], rest...)
		n = len(data)
	}
	rc.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading %s: %w", object, err)
	}
	r.metrics.getLatency.Observe(time.Since(start).Seconds())
	r.metrics.getBytes.Add(float64(n))
	return data[:n], nil
}

// decodeEntry decodes an index entry's extent, data, into its batches
// with their offsets.
func (r *reader) decodeEntry(e metadata.IndexEntry, data []byte) (*cachedExtent, error) {
	if int64(len(data)) != e.Length {
		return nil, fmt.Errorf("%w: %s: read %d bytes of extent at %d, index says %d", errCorruptObject, e.Object, len(data), e.Offset, e.Length)
	}
	raw, err := segments.ExtentRawLen(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at byte %d: %v", errCorruptObject, e.Object, e.Offset, err)
	}
	ce := &cachedExtent{
		arena:  make([]byte, 0, min(raw, maxPrealloc)),
		starts: make([]int, 0, e.Batches),
		bases:  make([]int64, 0, e.Batches),
		lasts:  make([]int64, 0, e.Batches),
	}
	next := e.First
	skip := e.Skip
	err = segments.DecodeExtent(data, func(ordinal int, batch []byte) error {
		if slices.Contains(skip, int32(ordinal)) {
			return nil
		}
		if len(batch) < 61 {
			return fmt.Errorf("%w: %s: short batch", errCorruptObject, e.Object)
		}
		pos := len(ce.arena)
		ce.arena = append(ce.arena, batch...)
		segments.SetBaseOffset(ce.arena[pos:], next)
		lastDelta := int64(int32(binary.BigEndian.Uint32(batch[23:27])))
		ce.starts = append(ce.starts, pos)
		ce.bases = append(ce.bases, next)
		next += lastDelta + 1
		ce.lasts = append(ce.lasts, next-1)
		return nil
	})
	if err != nil {
		if errors.Is(err, segments.ErrCorruptSegment) || errors.Is(err, segments.ErrUnsupportedVersion) {
			return nil, fmt.Errorf("%w: %s at byte %d: %v", errCorruptObject, e.Object, e.Offset, err)
		}
		return nil, err
	}
	if next-1 != e.Last || len(ce.bases) != int(e.Batches) {
		return nil, fmt.Errorf("%w: %s: extent holds offsets %d..%d in %d batches, index says %d..%d in %d", errCorruptObject, e.Object, e.First, next-1, len(ce.bases), e.First, e.Last, e.Batches)
	}
	ce.arena = slices.Clip(ce.arena)
	return ce, nil
}

// maxPrealloc bounds the buffers sized from an index entry or chunk
// headers before their bytes are checked; larger extents grow as read.
const maxPrealloc = 256 << 20

// cachedExtent is one index entry's batches, back to back in arena, with
// base offsets assigned.
type cachedExtent struct {
	arena  []byte
	starts []int   // byte position of each batch in arena
	bases  []int64 // base offset of each batch
	lasts  []int64 // last offset of each batch
}

// from returns the batches holding offset and after, as one slice of
// arena, and the number of batches. A batch that straddles offset is
// returned whole; clients skip its leading records.
func (c *cachedExtent) from(offset int64) ([]byte, int) {
	i, _ := slices.BinarySearch(c.lasts, offset)
	if i == len(c.lasts) {
		return nil, 0
	}
	return c.arena[c.starts[i]:], len(c.lasts) - i
}

// batchEnd returns the arena position just past batch i.
func (c *cachedExtent) batchEnd(i int) int {
	if i+1 < len(c.starts) {
		return c.starts[i+1]
	}
	return len(c.arena)
}

type extentKey struct {
	object string
	offset int64
	first  int64
}

// extentCache is an LRU of decoded extents with coalesced loads.
//
// Extents read ahead (prefetch) and not yet asked for are counted in
// ahead, which a read ahead may not push past a quarter of the cache, so
// reading ahead for many partitions cannot evict what is about to be read.
type extentCache struct {
	maxBytes int64
	metrics  *readerMetrics

	mu       sync.Mutex
	bytes    int64
	ahead    int64      // bytes read ahead and not yet asked for, or reserved for such reads
	lru      *list.List // of *cacheItem, most recent at front
	items    map[extentKey]*list.Element
	inflight map[extentKey]*loadCall
}

type cacheItem struct {
	key   extentKey
	val   *cachedExtent
	ahead bool // read ahead and not yet asked for; counted in extentCache.ahead
}

type loadCall struct {
	done chan struct{}
	val  *cachedExtent
	err  error
	used bool // a caller other than a read ahead waited for it; guarded by mu
}

func newExtentCache(maxBytes int64, m *readerMetrics) *extentCache {
	return &extentCache{maxBytes: maxBytes, metrics: m, lru: list.New(), items: map[extentKey]*list.Element{}, inflight: map[extentKey]*loadCall{}}
}

// has reports whether key is cached or being loaded.
func (c *extentCache) has(key extentKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, cached := c.items[key]
	_, loading := c.inflight[key]
	return cached || loading
}

// reserveAhead takes n bytes of the read-ahead budget, if there are.
func (c *extentCache) reserveAhead(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ahead+n > c.maxBytes/4 {
		return false
	}
	c.ahead += n
	return true
}

func (c *extentCache) get(ctx context.Context, key extentKey, load func(context.Context) (*cachedExtent, error)) (*cachedExtent, error) {
	return c.load(ctx, key, load)
}

// readAhead loads keys, with one load, into the cache for callers yet to
// come, with reserved bytes of the read-ahead budget (reserveAhead), which
// it returns. Keys already cached or being loaded are not loaded again:
// load is told which to decode (want) and returns one extent per key
// (nil where not wanted). Callers asking for a key meanwhile wait for
// this load, as for any other.
func (c *extentCache) readAhead(ctx context.Context, keys []extentKey, reserved int64, load func(ctx context.Context, want []bool) ([]*cachedExtent, error)) {
	want := make([]bool, len(keys))
	calls := make([]*loadCall, len(keys))
	wanted := 0
	c.mu.Lock()
	for i, key := range keys {
		_, cached := c.items[key]
		_, loading := c.inflight[key]
		if cached || loading {
			continue
		}
		want[i] = true
		wanted++
		calls[i] = &loadCall{done: make(chan struct{})}
		c.inflight[key] = calls[i]
	}
	if wanted == 0 {
		c.ahead -= reserved
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.metrics.cacheMisses.Add(float64(wanted))

	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	vals, err := load(lctx, want)
	cancel()

	c.mu.Lock()
	c.ahead -= reserved
	for i, key := range keys {
		if !want[i] {
			continue
		}
		if calls[i].err = err; err == nil {
			calls[i].val = vals[i]
		}
		c.finishLocked(key, calls[i])
	}
	c.metrics.cacheBytes.Set(float64(c.bytes))
	c.mu.Unlock()
	for i, call := range calls {
		if want[i] {
			close(call.done)
		}
	}
}

// load is get: from the cache, from a load in flight, or by calling
// load.
func (c *extentCache) load(ctx context.Context, key extentKey, load func(context.Context) (*cachedExtent, error)) (*cachedExtent, error) {
	c.mu.Lock()
	if el, ok := c.items[key]; ok {
		it := el.Value.(*cacheItem)
		c.lru.MoveToFront(el)
		if it.ahead {
			it.ahead = false
			c.ahead -= int64(len(it.val.arena))
		}
		c.mu.Unlock()
		c.metrics.cacheHits.Inc()
		return it.val, nil
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
	c.finishLocked(key, call)
	c.metrics.cacheBytes.Set(float64(c.bytes))
	c.mu.Unlock()
	close(call.done)
	return call.val, call.err
}

// finishLocked ends key's load: the extent is cached (if it may be),
// counted as read ahead if no caller has asked for it yet, and the least
// recently used extents are evicted to make room.
func (c *extentCache) finishLocked(key extentKey, call *loadCall) {
	delete(c.inflight, key)
	if call.err != nil || call.val == nil {
		return
	}
	size := int64(len(call.val.arena))
	if size > c.maxBytes/4 {
		if !call.used {
			c.metrics.prefetchWasted.Inc()
		}
		return
	}
	it := &cacheItem{key: key, val: call.val, ahead: !call.used}
	if it.ahead {
		c.ahead += size
	}
	c.items[key] = c.lru.PushFront(it)
	c.bytes += size
	for c.bytes > c.maxBytes {
		back := c.lru.Back()
		old := back.Value.(*cacheItem)
		c.lru.Remove(back)
		delete(c.items, old.key)
		size := int64(len(old.val.arena))
		c.bytes -= size
		if old.ahead {
			c.ahead -= size
			c.metrics.prefetchWasted.Inc()
		}
	}
}
