package logread

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Reader turns index entries into served batches. It owns three caches,
// each bounded in bytes:
//
//   - index windows of shard logs (index_window.go);
//   - object chunks as stored (chunk_cache.go): one GET serves every
//     partition's extent in a chunk;
//   - decoded extents with base offsets assigned, in an LRU
//     (extent_cache.go); concurrent misses for one extent share one
//     decode.
//
// Fetches plan and read through it (fetch.go); reads ahead run in the
// background until Close.
type Reader struct {
	store   *metadata.Store
	bucket  segments.BucketReader
	log     *slog.Logger
	metrics *readerMetrics

	chunkSize int64
	// plans are plan arrays for reuse (planBufs).
	plans   sync.Pool
	peers   PeerReader
	windows *indexWindows
	chunks  *chunkCache
	cache   *extentCache

	// prefetchSlots bounds the chunks and extents read ahead at once,
	// across the agent; a read ahead that finds no slot is skipped, never
	// queued.
	prefetchSlots chan struct{}
	// ctx bounds reads ahead, which wg counts; none starts once closed.
	ctx         context.Context
	wg          sync.WaitGroup
	aheadMu     sync.Mutex
	aheadClosed bool

	// reading is where fetches last read each partition, so a chunk read
	// for one partition decodes the extents in it of the others being
	// read (the other members of a consumer group).
	posMu   sync.Mutex
	reading map[metadata.PartitionID]readPos
}

// readPos is where fetches read a partition: the offset each of its
// readers (up to maxReaders: several consumer groups may read it at
// different places) has read up to, and when each and any last read it.
type readPos struct {
	readers [maxReaders]readerAt
	at      int64 // Unix nanoseconds of the last fetch
}

// readerAt is one reader's position; at is 0 for an unused slot.
type readerAt struct{ off, at int64 }

// Partitions read within activeFor count as being read; at most
// maxReading are followed. A reader's position counts toward the lowest
// for lowFor after it was last seen (fetches come every few hundred
// milliseconds): a reader that stopped no longer holds it down.
const (
	activeFor  = 30 * time.Second
	lowFor     = 2 * time.Second
	maxReading = 1 << 16
	maxReaders = 4
)

// Read sizes.
const (
	// DefaultChunkBytes is the default size of object reads.
	DefaultChunkBytes = 8 << 20
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

// Config sizes a Reader.
type Config struct {
	// CacheBytes bounds the reader's caches together: decoded batches,
	// object chunks as stored, and index windows (readerBudget).
	CacheBytes int64
	// ChunkBytes is the size of object reads. Default 8 MiB. Agents that
	// share reads (Peers) must use the same size.
	ChunkBytes int64
	// Peers, when set, reads what this agent does not own from the agent
	// of its zone that does (peers.go).
	Peers PeerReader
}

// New returns a Reader of the index in store and the objects in bucket.
// Its reads ahead run under ctx; its metrics are registered with reg
// (which may be nil).
func New(ctx context.Context, store *metadata.Store, bucket segments.BucketReader, cfg Config, log *slog.Logger, reg prometheus.Registerer) *Reader {
	chunkSize := cfg.ChunkBytes
	if chunkSize <= 0 {
		chunkSize = DefaultChunkBytes
	}
	m := newReaderMetrics(reg)
	extents, chunks, index := readerBudget(cfg.CacheBytes)
	return &Reader{
		store:         store,
		bucket:        bucket,
		log:           log,
		metrics:       m,
		chunkSize:     chunkSize,
		peers:         cfg.Peers,
		windows:       newIndexWindows(store, index, m),
		chunks:        newChunkCache(chunks, m),
		cache:         newExtentCache(extents, m),
		prefetchSlots: make(chan struct{}, maxPrefetches),
		reading:       map[metadata.PartitionID]readPos{},
		ctx:           ctx,
	}
}

// Close stops reading ahead and waits for the reads ahead under way. The
// reader still serves fetches (without reading ahead).
func (r *Reader) Close() {
	r.aheadMu.Lock()
	r.aheadClosed = true
	r.aheadMu.Unlock()
	r.wg.Wait()
}

// noteRead records that a fetch of partition id read from offset from up
// to next (with from == next, that it is about to read there): the reader
// that was at from is now at next. Following each reader, rather than the
// lowest offset asked for lately, keeps chunks read for one partition from
// decoding the extents of others that their readers have already passed.
func (r *Reader) noteRead(id metadata.PartitionID, from, next int64) {
	now := time.Now().UnixNano()
	r.posMu.Lock()
	defer r.posMu.Unlock()
	r.noteReadLocked(now, id, from, next)
}

// noteReading records that fetches are about to read parts from their
// offsets (those with something to read), with one hold of the lock: a
// wide fetch plans thousands at a time.
func (r *Reader) noteReading(parts []*Part) {
	now := time.Now().UnixNano()
	r.posMu.Lock()
	defer r.posMu.Unlock()
	for _, p := range parts {
		if p.Offset >= p.Start && p.Offset < p.HW {
			r.noteReadLocked(now, p.id(), p.Offset, p.Offset)
		}
	}
}

func (r *Reader) noteReadLocked(now int64, id metadata.PartitionID, from, next int64) {
	if _, ok := r.reading[id]; !ok && len(r.reading) >= maxReading {
		for k, p := range r.reading {
			if time.Duration(now-p.at) > activeFor {
				delete(r.reading, k)
			}
		}
		if len(r.reading) >= maxReading {
			return
		}
	}
	p := r.reading[id]
	i := -1
	for j, rd := range p.readers {
		if rd.at != 0 && rd.off == from {
			i = j
			break
		}
	}
	if i < 0 {
		// A new reader takes an unused slot, else the one seen least
		// recently.
		i = 0
		for j, rd := range p.readers {
			if rd.at < p.readers[i].at {
				i = j
			}
		}
	}
	p.readers[i] = readerAt{off: next, at: now}
	p.at = now
	r.reading[id] = p
}

// readingAt returns the lowest offset partition id is being read from, if
// it is being read: the lowest of its readers seen within lowFor, else of
// all it knows.
func (r *Reader) readingAt(id metadata.PartitionID) (int64, bool) {
	now := time.Now().UnixNano()
	r.posMu.Lock()
	defer r.posMu.Unlock()
	return r.readingAtLocked(now, id)
}

func (r *Reader) readingAtLocked(now int64, id metadata.PartitionID) (int64, bool) {
	p, ok := r.reading[id]
	if !ok || time.Duration(now-p.at) > activeFor {
		return 0, false
	}
	low, lowAll := int64(math.MaxInt64), int64(math.MaxInt64)
	for _, rd := range p.readers {
		if rd.at == 0 {
			continue
		}
		lowAll = min(lowAll, rd.off)
		if time.Duration(now-rd.at) <= lowFor {
			low = min(low, rd.off)
		}
	}
	if low == math.MaxInt64 {
		low = lowAll
	}
	return low, true
}

// Observe learns a log entry written (the watermark watch, or the agent's
// own commit), so index windows extend without reading etcd.
func (r *Reader) Observe(sh metadata.ShardID, e *metadata.LogEntry) { r.windows.observe(sh, e) }

// Reset drops every index window: the watch that extends them restarted
// and may have missed entries.
func (r *Reader) Reset() { r.windows.reset() }

// entries returns index entries of partition p of t that hold offset and
// the ones after it, below hw: at most maxLookup of them, and no more once
// they hold maxBytes (at least one). ok is false when the records at
// offset are gone.
func (r *Reader) entries(ctx context.Context, t metadata.Topic, p int32, offset, hw, maxBytes int64) ([]metadata.IndexEntry, bool, error) {
	return r.windows.entries(ctx, t, p, offset, hw, maxLookup, maxBytes)
}

// maxLookup bounds the index entries one lookup returns.
const maxLookup = 64

// invalidate drops what the reader holds of a partition's index.
func (r *Reader) invalidate(t metadata.Topic, p int32) { r.windows.invalidate(t.Shard(p)) }

// Batches calls fn with each batch of index entry e (base and last offset
// assigned, and the batch's bytes, which fn must not modify or keep)
// until fn returns false. ListOffsets finds timestamps this way.
func (r *Reader) Batches(ctx context.Context, e metadata.IndexEntry, fn func(base, last int64, raw []byte) bool) error {
	ext, err := r.extent(ctx, e)
	if err != nil {
		return err
	}
	for i, start := range ext.starts {
		if !fn(ext.bases[i], ext.lasts[i], ext.arena[int(start):ext.batchEnd(i)]) {
			return nil
		}
	}
	return nil
}

func keyOf(e metadata.IndexEntry) extentKey { return extentKey{e.Object, e.Offset, e.First} }

// direct reports whether e is read with a GET of its own: an extent at
// least a chunk long (a partition's data the compactor merged) is worth a
// request, so GETs per GiB stay within 1 GiB / chunk size whichever way an
// object is read; smaller ones are read with their chunk, which serves
// the other partitions in it too.
func (r *Reader) direct(e metadata.IndexEntry) bool {
	return e.Length >= r.chunkSize || e.ObjectSize <= 0
}

// chunksOf returns the chunks e is read from (none for a direct read).
//
// The spans are appended to buf's array while they fit (an extent is in
// one or two chunks but for the largest), so a caller that does not keep
// them allocates nothing.
func (r *Reader) chunksOf(buf *[2]chunkSpan, e metadata.IndexEntry) []chunkSpan {
	if r.direct(e) {
		return nil
	}
	return chunksOf(buf[:0], e.Object, e.ObjectSize, e.Offset, e.Length, r.chunkSize)
}

// ready reports whether e can be served without reading the bucket: it is
// decoded, or every chunk it needs is cached or being read.
func (r *Reader) ready(e metadata.IndexEntry) bool {
	if r.cache.has(keyOf(e)) {
		return true
	}
	var buf [2]chunkSpan
	spans := r.chunksOf(&buf, e)
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
func (r *Reader) extent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	return r.extentInto(ctx, e, nil)
}

// extentInto is extent, made in buf when it is one of a chunk's item
// (nil: a new one).
func (r *Reader) extentInto(ctx context.Context, e metadata.IndexEntry, buf *cachedExtent) (*cachedExtent, error) {
	return r.cache.load(ctx, keyOf(e), buf, func(ctx context.Context) (*cachedExtent, error) {
		return r.loadExtent(ctx, e)
	})
}

// readyExtentInto is extentInto for an extent that is cached or being
// loaded: otherwise it returns errNotReady, and reads nothing.
func (r *Reader) readyExtentInto(ctx context.Context, e metadata.IndexEntry, buf *cachedExtent) (*cachedExtent, error) {
	return r.cache.load(ctx, keyOf(e), buf, nil)
}

func (r *Reader) loadExtent(ctx context.Context, e metadata.IndexEntry) (*cachedExtent, error) {
	data, err := r.extentBytes(ctx, e)
	if err != nil {
		return nil, err
	}
	ce, err := r.decodeEntry(e, data)
	if err != nil && errors.Is(err, ErrCorruptObject) {
		r.chunks.drop(e.Object) // read it again next time
	}
	return ce, err
}

// extentBytes returns e's stored bytes: a slice of a cached chunk, or
// read on their own. They must not be modified.
func (r *Reader) extentBytes(ctx context.Context, e metadata.IndexEntry) ([]byte, error) {
	var buf [2]chunkSpan
	spans := r.chunksOf(&buf, e)
	if len(spans) == 0 {
		return r.readShared(ctx, e.Object, e.Offset, e.Length, nil)
	}
	var out []byte
	for _, s := range spans {
		chunk, err := r.chunk(ctx, s, nil)
		if err != nil {
			return nil, err
		}
		lo, hi := max(e.Offset, s.start)-s.start, min(e.Offset+e.Length, s.end)-s.start
		if hi > int64(len(chunk)) || lo > hi {
			return nil, fmt.Errorf("%w: %s: read %d bytes at %d, the index says the extent at %d is %d bytes", ErrCorruptObject, e.Object, len(chunk), s.start, e.Offset, e.Length)
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
func (r *Reader) decodeHeld(e metadata.IndexEntry, spans []chunkSpan, held [][]byte) (*cachedExtent, error) {
	var data []byte
	for i, s := range spans {
		lo, hi := max(e.Offset, s.start)-s.start, min(e.Offset+e.Length, s.end)-s.start
		if hi > int64(len(held[i])) || lo > hi {
			return nil, fmt.Errorf("%w: %s: read %d bytes at %d, the index says the extent at %d is %d bytes", ErrCorruptObject, e.Object, len(held[i]), s.start, e.Offset, e.Length)
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
// being read decoded as it arrives (neighbours), counted against res
// first when a read ahead reserved room for them (nil: none did).
func (r *Reader) chunk(ctx context.Context, s chunkSpan, res *aheadReservation) ([]byte, error) {
	return r.chunks.get(ctx, s.key, func(ctx context.Context) ([]byte, error) {
		// The windows that do not reach the object yet are extended while
		// it is read, so decoding it finds every reader's extents in it.
		covered := make(chan struct{})
		go func() {
			defer close(covered)
			r.windows.coverObject(ctx, s.key.object)
		}()
		// What to decode is looked up once the windows cover the
		// object, when the first MiB has arrived (or the whole chunk).
		var nb *neighbours
		decoder := func() *neighbours {
			if nb == nil {
				<-covered
				nb = r.neighboursOf(s, res)
			}
			return nb
		}
		data, err := r.readShared(ctx, s.key.object, s.start, s.end-s.start, func(part []byte) { decoder().arrived(part, false) })
		<-covered
		if err == nil {
			decoder().finish(data)
		}
		return data, err
	})
}

// neighbours decodes, from a chunk being read, the extents in it of
// partitions fetches are reading that they have not read yet, into the
// cache (within its read-ahead budget): the members of a consumer group
// each ask for their own partitions, and one GET of a chunk then serves
// them all, however far apart their fetches come.
//
// A chunk with many such extents (a flush object over many partitions)
// has them decoded together (chunk_extents.go), as its bytes arrive: a
// piece of the chunk at a time, each piece's extents into one cache item.
// The fetches waiting for the chunk then wait for the GET, not for the
// GET and then the decode of thousands of extents after it.
type neighbours struct {
	r   *Reader
	s   chunkSpan
	res *aheadReservation
	// todo are the extents to decode, by stored offset; todo[:next] were
	// decoded together as they arrived (or left for one by one).
	todo     []metadata.IndexEntry
	next     int
	together bool
	// oneByOne are the extents left for one by one: those a piece's
	// item had no room for.
	oneByOne []metadata.IndexEntry
	// room is what is left of the read-ahead budget taken for the
	// chunk's items (once roomTaken).
	room      int64
	roomTaken bool
}

// neighboursOf returns what decoding chunk s will decode: the extents in
// it of partitions being read (once the index windows cover it).
func (r *Reader) neighboursOf(s chunkSpan, res *aheadReservation) *neighbours {
	var todo, read []metadata.IndexEntry
	// The positions are looked up, then the cache, each with one hold of
	// its lock: a chunk of a wide flush holds thousands of extents.
	in := r.windows.extentsIn(s.key.object, s.start, s.end)
	r.posMu.Lock()
	now := time.Now().UnixNano()
	for _, e := range in {
		if res != nil && res.own[keyOf(e.IndexEntry)] {
			todo = append(todo, e.IndexEntry)
			continue
		}
		next, ok := r.readingAtLocked(now, metadata.PartitionID{Topic: e.topic, Partition: e.partition})
		if !ok || e.Last < next {
			continue
		}
		read = append(read, e.IndexEntry)
	}
	r.posMu.Unlock()
	todo = r.cache.appendMissing(todo, read)
	slices.SortFunc(todo, func(a, b metadata.IndexEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	todo = slices.CompactFunc(todo, func(a, b metadata.IndexEntry) bool { return a.Offset == b.Offset })
	nb := &neighbours{r: r, s: s, res: res, todo: todo}
	// Many extents are decoded together if they come to less than an
	// eighth of the read-ahead budget: an item counts against the budget
	// whole until every extent in it was used, and larger items, in a
	// small cache, left too few of them in flight for a group's readers
	// to move on (each waited for the slowest, or had its chunks read
	// again).
	if len(todo) >= minChunkExtents {
		var size int64
		for _, e := range todo {
			size += e.Length
		}
		nb.together = size < r.cache.itemMax()
	}
	return nb
}

// arrived decodes together the extents that data, the chunk's bytes
// from its start so far, holds whole and that were not decoded yet: at
// least minChunkExtents of them, or with last (the chunk is read) all.
func (nb *neighbours) arrived(data []byte, last bool) {
	if !nb.together || nb.next == len(nb.todo) {
		return
	}
	end := nb.s.start + int64(len(data))
	j := nb.next
	for j < len(nb.todo) && nb.todo[j].Offset+nb.todo[j].Length <= end {
		j++
	}
	if j == nb.next || (j-nb.next < minChunkExtents && !last) {
		return
	}
	ready := nb.todo[nb.next:j:j]
	nb.next = j
	r := nb.r
	if !nb.roomTaken {
		// The chunk's room is taken once, for all its pieces (a read
		// ahead reserved it for the whole chunk), and what its items do
		// not take is given back when it is read.
		nb.room, nb.roomTaken = r.cache.takeAheadRoom(nb.res), true
	}
	ch, rest := decodeChunkExtents(nb.s, data, ready, nb.room)
	if ch != nil {
		// The item answers for the extents it holds, not the whole chunk.
		ch.start, ch.end = ch.ext[0].offset, ch.ext[len(ch.ext)-1].offset+1
		nb.room -= ch.size
		r.metrics.prefetches.Add(float64(r.cache.offerChunk(ch, ch.size, nb.res)))
	}
	if len(rest) > 0 {
		// The budget is spent: what is left is offered one by one once
		// the chunk is read, and taken only while there is room.
		nb.oneByOne = append(nb.oneByOne, rest...)
		nb.oneByOne = append(nb.oneByOne, nb.todo[nb.next:]...)
		nb.next = len(nb.todo)
	}
}

// finish decodes what the chunk's bytes, data, hold of what is left:
// together what was not decoded as it arrived, then one by one the
// extents no item had room for (or all, when the chunk's extents are
// not decoded together). Extents past the end of data (a short read)
// are left to the fetches that need them, which report it.
func (nb *neighbours) finish(data []byte) {
	nb.arrived(data, true)
	if nb.roomTaken {
		nb.r.cache.offerChunk(nil, nb.room, nil) // gives back what no item took
		nb.room = 0
	}
	todo := nb.oneByOne
	if !nb.together {
		todo = nb.todo
	}
	r, s, res := nb.r, nb.s, nb.res
	for _, e := range todo {
		if res != nil && res.own[keyOf(e)] {
			continue // the read ahead decodes its own
		}
		if e.Offset+e.Length > s.start+int64(len(data)) {
			continue // a short read: the fetch that needs it reports it
		}
		lo := e.Offset - s.start
		ce, err := r.decodeEntry(e, data[lo:lo+e.Length:lo+e.Length])
		if err != nil {
			continue // the fetch that needs it decodes it again and reports it
		}
		taken, full := r.cache.offer(keyOf(e), ce, res)
		if taken {
			r.metrics.prefetches.Inc()
		}
		if full {
			return // the read-ahead budget is spent: the chunk serves the rest
		}
	}
}

// minChunkExtents is the fewest extents neighbours decodes
// together, into one item: fewer, larger extents are kept one by one.
const minChunkExtents = 32

// readRange reads length bytes of object at offset with one ranged GET
// (fewer if the object is shorter: callers check). With arrived set, it
// calls it with the bytes read so far each time another readPiece have
// arrived (not for the last of them: the caller has them all).
func (r *Reader) readRange(ctx context.Context, object string, offset, length int64, arrived func([]byte)) ([]byte, error) {
	start := time.Now()
	rc, err := r.bucket.GetRange(ctx, object, offset, length)
	if err != nil {
		if errors.Is(err, segments.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrMissingObject, object)
		}
		return nil, fmt.Errorf("reading %s: %w", object, err)
	}
	// Read into a buffer of the range's size (io.ReadAll would grow one
	// from 512 bytes), within reason: the length comes from etcd.
	data := make([]byte, min(length, maxPrealloc)+1)
	n, err := readPieces(rc, data, arrived)
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

// readPiece is how many bytes of a chunk arrive between calls of
// readRange's arrived.
const readPiece = 1 << 20

// readPieces is io.ReadFull of buf from rd, calling arrived (if set) with
// what was read so far whenever another readPiece bytes have come and
// more are expected.
func readPieces(rd io.Reader, buf []byte, arrived func([]byte)) (int, error) {
	if arrived == nil {
		return io.ReadFull(rd, buf)
	}
	n, told := 0, 0
	for n < len(buf) {
		m, err := rd.Read(buf[n:])
		n += m
		if err != nil {
			if n == len(buf) {
				err = nil
			} else if n > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if n-told >= readPiece && n < len(buf) {
			arrived(buf[:n])
			told = n
		}
	}
	return n, nil
}
