package agent

import (
	"cmp"
	"context"
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

// reader turns index entries into served batches. It owns three caches,
// each bounded in bytes:
//
//   - index windows of shard logs (index_window.go);
//   - object chunks as stored (chunk_cache.go): one GET serves every
//     partition's extent in a chunk;
//   - decoded extents with base offsets assigned, in an LRU
//     (extent_cache.go); concurrent misses for one extent share one
//     decode.
type reader struct {
	store   *metadata.Store
	bucket  segments.BucketReader
	log     *slog.Logger
	metrics *readerMetrics

	chunkSize int64
	windows   *indexWindows
	chunks    *chunkCache
	cache     *extentCache

	// prefetchSlots bounds the chunks and extents read ahead at once,
	// across the agent; a read ahead that finds no slot is skipped, never
	// queued.
	prefetchSlots chan struct{}

	// reading is where fetches last read each partition, so a chunk read
	// for one partition decodes the extents in it of the others being
	// read (the other members of a consumer group).
	posMu   sync.Mutex
	reading map[metadata.PartitionID]readPos
}

// readPos is where fetches read a partition: the lowest offset any of
// them asked for since lowAt (several consumer groups may read it at
// different places), and when one last did.
type readPos struct {
	low   int64
	lowAt time.Time
	at    time.Time
}

// Partitions read within activeFor count as being read; at most
// maxReading are followed. The lowest offset a partition is read from is
// kept for lowFor: a slower reader of it notes its own within that time
// (fetches come every few hundred milliseconds), a reader that moved on
// no longer holds it down.
const (
	activeFor  = 30 * time.Second
	lowFor     = 2 * time.Second
	maxReading = 1 << 16
)

// Read sizes.
const (
	// defaultReadChunk is the chunk size of object reads.
	defaultReadChunk = 8 << 20
	// directExtentMin: extents at least this large are read with a GET of
	// their own instead of through chunks.
	directExtentMin = 1 << 20
	// maxPrefetches is how many chunks the agent reads ahead at once
	// (each up to 1.5 read chunks in memory while it is read).
	maxPrefetches = 8
)

// readerBudget splits the cache bytes between the reader's caches:
// decoded extents, chunks as stored, index windows.
//
// Chunks are kept for the extents not decoded when they were read (of
// partitions nobody was reading yet); what consumers read is decoded as
// soon as its chunk arrives, so decoded extents get the larger share.
func readerBudget(cacheBytes int64) (extents, chunks, index int64) {
	index = min(cacheBytes/8, 32<<20)
	chunks = cacheBytes / 8
	extents = cacheBytes - index - chunks
	return extents, chunks, index
}

func newReader(store *metadata.Store, bucket segments.BucketReader, cacheBytes, chunkSize int64, log *slog.Logger, m *readerMetrics) *reader {
	if chunkSize <= 0 {
		chunkSize = defaultReadChunk
	}
	extents, chunks, index := readerBudget(cacheBytes)
	return &reader{
		store:         store,
		bucket:        bucket,
		log:           log,
		metrics:       m,
		chunkSize:     chunkSize,
		windows:       newIndexWindows(store, index, m),
		chunks:        newChunkCache(chunks, m),
		cache:         newExtentCache(extents, m),
		prefetchSlots: make(chan struct{}, maxPrefetches),
		reading:       map[metadata.PartitionID]readPos{},
	}
}

// noteRead records that a fetch read partition id up to next.
func (r *reader) noteRead(id metadata.PartitionID, next int64) {
	now := time.Now()
	r.posMu.Lock()
	defer r.posMu.Unlock()
	if _, ok := r.reading[id]; !ok && len(r.reading) >= maxReading {
		for k, p := range r.reading {
			if now.Sub(p.at) > activeFor {
				delete(r.reading, k)
			}
		}
		if len(r.reading) >= maxReading {
			return
		}
	}
	p, ok := r.reading[id]
	if !ok || next <= p.low || now.Sub(p.lowAt) > lowFor {
		// A new lowest reader, or the lowest one has not been seen there
		// lately (it has moved on, or stopped).
		p.low, p.lowAt = next, now
	}
	p.at = now
	r.reading[id] = p
}

// readingAt returns the lowest offset partition id is being read from, if
// it is being read.
func (r *reader) readingAt(id metadata.PartitionID) (int64, bool) {
	r.posMu.Lock()
	defer r.posMu.Unlock()
	p, ok := r.reading[id]
	if !ok || time.Since(p.at) > activeFor {
		return 0, false
	}
	return p.low, true
}

// observe learns a log entry written (watch or own commit).
func (r *reader) observe(sh metadata.ShardID, e *metadata.LogEntry) { r.windows.observe(sh, e) }

// entries returns index entries of partition p of t that hold offset and
// the ones after it, below hw: at most maxLookup of them, and no more once
// they hold maxBytes (at least one). ok is false when the records at
// offset are gone.
func (r *reader) entries(ctx context.Context, t metadata.Topic, p int32, offset, hw, maxBytes int64) ([]metadata.IndexEntry, bool, error) {
	return r.windows.entries(ctx, t, p, offset, hw, maxLookup, maxBytes)
}

// maxLookup bounds the index entries one lookup returns.
const maxLookup = 64

// invalidate drops what the reader holds of a partition's index.
func (r *reader) invalidate(t metadata.Topic, p int32) { r.windows.invalidate(t.Shard(p)) }

func keyOf(e metadata.IndexEntry) extentKey { return extentKey{e.Object, e.Offset, e.First} }

// direct reports whether e is read with a GET of its own.
func (r *reader) direct(e metadata.IndexEntry) bool {
	return e.Length >= directExtentMin || e.ObjectSize <= 0
}

// chunksOf returns the chunks e is read from (none for a direct read).
func (r *reader) chunksOf(e metadata.IndexEntry) []chunkSpan {
	if r.direct(e) {
		return nil
	}
	return chunksOf(e.Object, e.ObjectSize, e.Offset, e.Length, r.chunkSize)
}

// ready reports whether e can be served without reading the bucket: it is
// decoded, or every chunk it needs is cached or being read.
func (r *reader) ready(e metadata.IndexEntry) bool {
	if r.cache.has(keyOf(e)) {
		return true
	}
	spans := r.chunksOf(e)
	if len(spans) == 0 {
		return false
	}
	for _, s := range spans {
		if !r.chunks.cached(s.key) {
			return false
		}
	}
	return true
}

// extent returns an index entry's batches, offsets assigned, from the
// cache, its chunks, or the bucket.
func (r *reader) extent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	return r.cache.get(ctx, keyOf(e), func(ctx context.Context) (*cachedExtent, error) {
		return r.loadExtent(ctx, e)
	})
}

func (r *reader) loadExtent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	data, err := r.extentBytes(ctx, e)
	if err != nil {
		return nil, err
	}
	ce, err := r.decodeEntry(e, data)
	if err != nil && errors.Is(err, errCorruptObject) {
		r.chunks.drop(e.Object) // read it again next time
	}
	return ce, err
}

// extentBytes returns e's stored bytes: a slice of a cached chunk, or
// read on their own. They must not be modified.
func (r *reader) extentBytes(ctx context.Context, e metadata.IndexEntry) ([]byte, error) {
	spans := r.chunksOf(e)
	if len(spans) == 0 {
		return r.readRange(ctx, e.Object, e.Offset, e.Length)
	}
	var out []byte
	for _, s := range spans {
		chunk, err := r.chunk(ctx, s)
		if err != nil {
			return nil, err
		}
		lo, hi := max(e.Offset, s.start)-s.start, min(e.Offset+e.Length, s.end)-s.start
		if hi > int64(len(chunk)) || lo > hi {
			return nil, fmt.Errorf("%w: %s: read %d bytes at %d, the index says the extent at %d is %d bytes", errCorruptObject, e.Object, len(chunk), s.start, e.Offset, e.Length)
		}
		if len(spans) == 1 {
			return chunk[lo:hi:hi], nil
		}
		if out == nil {
			out = make([]byte, 0, e.Length)
		}
		out = append(out, chunk[lo:hi]...)
	}
	return out, nil
}

// decodeHeld decodes e from chunks already read (spans and their bytes).
func (r *reader) decodeHeld(e metadata.IndexEntry, spans []chunkSpan, held [][]byte) (*cachedExtent, error) {
	var data []byte
	for i, s := range spans {
		lo, hi := max(e.Offset, s.start)-s.start, min(e.Offset+e.Length, s.end)-s.start
		if hi > int64(len(held[i])) || lo > hi {
			return nil, fmt.Errorf("%w: %s: read %d bytes at %d, the index says the extent at %d is %d bytes", errCorruptObject, e.Object, len(held[i]), s.start, e.Offset, e.Length)
		}
		if len(spans) == 1 {
			data = held[i][lo:hi:hi]
			break
		}
		data = append(data, held[i][lo:hi]...)
	}
	return r.decodeEntry(e, data)
}

// chunk returns a chunk's bytes, reading it once however many ask. A
// chunk read from the bucket has the extents in it of the partitions
// being read decoded at once (decodeNeighbours).
func (r *reader) chunk(ctx context.Context, s chunkSpan) ([]byte, error) {
	return r.chunks.get(ctx, s.key, func(ctx context.Context) ([]byte, error) {
		data, err := r.readRange(ctx, s.key.object, s.start, s.end-s.start)
		if err == nil {
			r.decodeNeighbours(s, data)
		}
		return data, err
	})
}

// decodeNeighbours decodes, from a chunk just read, the extents in it of
// partitions fetches are reading that they have not read yet, into the
// cache (within its read-ahead budget): the members of a consumer group
// each ask for their own partitions, and one GET of a chunk then serves
// them all, however far apart their fetches come.
func (r *reader) decodeNeighbours(s chunkSpan, data []byte) {
	for _, e := range r.windows.extentsIn(s.key.object, s.start, s.end) {
		if e.Offset+e.Length > s.start+int64(len(data)) {
			continue // a short read: the fetch that needs it reports it
		}
		next, ok := r.readingAt(metadata.PartitionID{Topic: e.topic, Partition: e.partition})
		if !ok || e.Last < next || r.cache.has(keyOf(e.IndexEntry)) {
			continue
		}
		lo := e.Offset - s.start
		ce, err := r.decodeEntry(e.IndexEntry, data[lo:lo+e.Length:lo+e.Length])
		if err != nil {
			continue // the fetch that needs it decodes it again and reports it
		}
		taken, full := r.cache.offer(keyOf(e.IndexEntry), ce)
		if taken {
			r.metrics.prefetches.Inc()
		}
		if full {
			return // the read-ahead budget is spent: the chunk serves the rest
		}
	}
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
	return data[:n:n], nil
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
	var next int64
	ce.arena, next, err = segments.ReadExtent(data, e.First, e.Skip, ce.arena, func(b segments.AssignedBatch) error {
		ce.starts = append(ce.starts, b.Start)
		ce.bases = append(ce.bases, b.Base)
		ce.lasts = append(ce.lasts, b.Last)
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

// prefetch reads entries into the cache in the background, so their GETs
// overlap each other and the client instead of running one after another
// when fetches ask for them. Entries are grouped by the chunk they are in:
// each chunk is read once (with one GET), and the entries of it decoded
// into the cache. What is read ahead and not yet asked for stays within a
// quarter of the extent cache, with at most maxPrefetches reads at a time
// per agent. It never blocks; goroutines it starts are added to wg and end
// with their read.
func (r *reader) prefetch(ctx context.Context, wg *sync.WaitGroup, entries []metadata.IndexEntry) {
	type group struct {
		spans   []chunkSpan
		entries []metadata.IndexEntry
		bytes   int64
	}
	// A group is read by one GET, or two for an extent across a chunk
	// boundary: its first chunk, its last, or for a direct read the
	// extent's offset.
	type groupID struct {
		object      string
		first, last int64
	}
	var (
		groups []*group
		byID   = map[groupID]*group{}
		seen   = map[extentKey]bool{}
	)
	for _, e := range entries {
		k := keyOf(e)
		if seen[k] || r.cache.has(k) {
			continue
		}
		seen[k] = true
		spans := r.chunksOf(e)
		id := groupID{object: e.Object, first: -1, last: e.Offset} // a direct read is a group of its own
		if len(spans) > 0 {
			id = groupID{object: e.Object, first: int64(spans[0].key.index), last: int64(spans[len(spans)-1].key.index)}
		}
		g := byID[id]
		if g == nil {
			g = &group{spans: spans}
			byID[id] = g
			groups = append(groups, g)
		}
		g.entries = append(g.entries, e)
		g.bytes += e.Length
	}
	for _, g := range groups {
		// A chunk read brings in every active partition's extent in it
		// (decodeNeighbours), about the chunk's size in all: reserve that
		// much of the read-ahead budget, not just this group's extents, so
		// reads ahead cannot outrun what the cache holds.
		reserve := g.bytes
		for _, s := range g.spans {
			if !r.chunks.cached(s.key) {
				reserve += s.end - s.start
			}
		}
		if !r.cache.reserveAhead(reserve) {
			return
		}
		select {
		case r.prefetchSlots <- struct{}{}:
		default:
			r.cache.reserveAhead(-reserve)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-r.prefetchSlots }()
			r.metrics.prefetches.Add(float64(len(g.entries)))
			keys := make([]extentKey, len(g.entries))
			for i, e := range g.entries {
				keys[i] = keyOf(e)
			}
			r.cache.readAhead(ctx, keys, reserve, func(ctx context.Context, want []bool) ([]*cachedExtent, error) {
				// The group's chunks are held for all of its entries, so a
				// chunk evicted meanwhile is not read again.
				held := make([][]byte, len(g.spans))
				for i, s := range g.spans {
					data, err := r.chunk(ctx, s)
					if err != nil {
						return nil, err
					}
					held[i] = data
				}
				out := make([]*cachedExtent, len(g.entries))
				for i, e := range g.entries {
					if !want[i] {
						continue
					}
					var (
						ce  *cachedExtent
						err error
					)
					if len(g.spans) == 0 {
						ce, err = r.loadExtent(ctx, e)
					} else {
						ce, err = r.decodeHeld(e, g.spans, held)
					}
					if err != nil {
						return nil, err
					}
					out[i] = ce
				}
				return out, nil
			})
		}()
	}
}

// chunkOrder orders index entries by the age of their objects (commit
// time, then object key), as consumers that read many partitions together
// move through them.
func chunkOrder(a, b metadata.IndexEntry) int {
	if c := cmp.Compare(a.Committed, b.Committed); c != 0 {
		return c
	}
	if c := strings.Compare(a.Object, b.Object); c != 0 {
		return c
	}
	return cmp.Compare(a.Offset, b.Offset)
}
