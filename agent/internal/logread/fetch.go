package logread

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/floe-io/floe/metadata"
)

// Fetches.
//
// A fetch request reads many partitions. Reads are planned across them
// before any is read (Plan): each partition's next index entries are
// found, and of the entries whose object chunks are neither cached nor
// being read, only those in the oldest chunks, up to about the response's
// size, are read now (all at once, in the background). A partition whose
// next entry is in a later chunk returns nothing this time (Kafka allows a
// broker to return less than a partition's maximum). A consumer of many
// partitions therefore moves through objects in the order they were
// written, reading each chunk once for all its partitions, instead of
// reading every object once per partition.
//
// Reads are flow-controlled: what a chunk brings in for the partitions
// being read waits in the cache's read-ahead budget until they are read,
// so a chunk is read only while that budget has room for it. A fetch with
// no room reads nothing from the bucket (Throttled: it serves what is
// ready, and the caller looks again shortly, as slower readers, such as
// other consumer groups, read what was brought in for them and free the
// budget; what nobody asks for within aheadTTL stops counting). A fetch
// held back with nothing to serve for a while is planned with force, and
// reads its oldest chunk anyway, so every reader makes progress.
//
// After the reads (Done), each partition that returned batches has about
// as much again read ahead, so those reads overlap the client's
// processing of the response.

// Part is one partition a fetch reads. The caller sets the exported fields
// before Plan and before Read; the reader keeps the partition's plan and
// what it returned, for reading ahead.
type Part struct {
	Topic     metadata.Topic
	Partition int32
	// Offset is where the fetch reads from, Max the most bytes it may
	// return.
	Offset int64
	Max    int64
	// Start and HW are the partition's log start and high watermark (for
	// a read_committed fetch, its last stable offset): a part whose Offset
	// is outside [Start, HW) has nothing to read, and no batch starting at
	// HW or later is read.
	Start, HW int64

	plan []metadata.IndexEntry
	// ready holds, for each planned entry, its extent when the plan found
	// it cached (none otherwise), so the read does not look it up again.
	ready         []extentRef
	next, got, hw int64 // after a read that returned batches: the offset after them, their bytes, the high watermark
}

func (p *Part) id() metadata.PartitionID {
	return metadata.PartitionID{Topic: p.Topic.ID, Partition: p.Partition}
}

// Batches are a partition's record batches for a response: slices of
// cached extents, which are immutable, in offset order.
type Batches struct {
	Parts [][]byte
	Bytes int64
	Next  int64 // the offset after the last batch
}

func (b *Batches) add(data []byte, next int64) {
	if len(data) > 0 {
		b.Parts = append(b.Parts, data)
		b.Bytes += int64(len(data))
		b.Next = next
	}
}

// Fetch is one pass of reads over a request's partitions: Plan, then Read
// each part, then Done.
type Fetch struct {
	r     *Reader
	parts []*Part
	// allowed are the entries that may be read from the bucket for this
	// response; the others must be ready (Reader.ready). nil: everything
	// planned was ready.
	allowed   map[extentKey]bool
	throttled bool
	// spare: when the plan found everything ready but an extent left the
	// cache since, one partition may read it again; the others wait for
	// the next response.
	spare  atomic.Bool
	pinned []chunkKey
	bytes  atomic.Int64
	// bufs are the arrays the plan was made in, the parts' plans among
	// them, given back to the reader's pool by Done. Their later are, for
	// a wide fetch, the entries the plan found still to be read and left
	// for a later pass, oldest chunks first: what Done reads ahead.
	bufs *planBufs
}

// planBufs are the arrays of a plan, kept by the reader between fetches
// (Reader.plans): a fetch of thousands of partitions plans thousands of
// entries, and growing those arrays anew each time cost more than looking
// up the entries' cached extents.
type planBufs struct {
	plan  []metadata.IndexEntry
	ready []extentRef
	cold  []metadata.IndexEntry
	order []metadata.IndexEntry // cold, in chunk order
	start []metadata.IndexEntry // of order, those read now
	later []metadata.IndexEntry // of order, those left for a later pass
}

// maxPooledPlan bounds the entries of the plan arrays kept for reuse.
const maxPooledPlan = 1 << 16

// release clears b (its entries hold object names and cached items) and
// gives it back to pool, unless it grew past maxPooledPlan.
func (b *planBufs) release(pool *sync.Pool) {
	for _, a := range [][]metadata.IndexEntry{b.plan, b.cold, b.order, b.start, b.later} {
		if cap(a) > maxPooledPlan {
			return
		}
	}
	clear(b.plan)
	clear(b.ready)
	clear(b.cold)
	clear(b.order)
	clear(b.start)
	clear(b.later)
	b.plan, b.ready, b.cold, b.order = b.plan[:0], b.ready[:0], b.cold[:0], b.order[:0]
	b.start, b.later = b.start[:0], b.later[:0]
	pool.Put(b)
}

// wideFetch is the fewest partitions of a fetch whose read ahead follows
// its plan's chunks rather than each partition (Done).
const wideFetch = 256

// Plan finds each part's next entries and starts reading the chunks the
// response, of at most maxBytes, will use. The chunks it allows reading
// from (cached, or to be read) are pinned in the chunk cache until Done,
// so they are not evicted between the plan and the read.
func (r *Reader) Plan(ctx context.Context, parts []*Part, maxBytes int64, force bool) *Fetch {
	bufs, _ := r.plans.Get().(*planBufs)
	if bufs == nil {
		bufs = &planBufs{}
	}
	f := &Fetch{r: r, parts: parts, bufs: bufs}
	cold := bufs.cold
	pinSeen := map[chunkKey]bool{}
	pin := func(spans []chunkSpan) {
		for _, s := range spans {
			if !pinSeen[s.key] {
				pinSeen[s.key] = true
				f.pinned = append(f.pinned, s.key)
				r.chunks.pin(s.key)
			}
		}
	}
	// The plan covers what the response can hold, partitions in the
	// request's order (as the caller reads them): with thousands of
	// partitions a response holds a few of each one's entries, and
	// planning more would cost lookups for nothing. A partition past that
	// still gives its next entry, so chunks are read oldest first for all
	// of them.
	//
	// Nor does a partition plan more entries still to be read than the
	// response could read chunks for (coldMax): a partition's entries are
	// in successive objects, so with thousands of partitions in every
	// object the first partitions' full plans would name every object,
	// of which the response reads the oldest few.
	room := maxBytes
	coldMax := r.coldMax(maxBytes)
	// The cache is asked about a partition's entries all at once (one
	// hold of its lock), as far as they may be planned.
	var (
		keys    []extentKey
		refs    []extentRef
		loading []bool
	)
	// The parts' plans share one array (appended to as each is planned;
	// each keeps the array it was planned in), as do their lookups.
	var (
		planBuf  = bufs.plan
		readyBuf = bufs.ready
		look     []metadata.IndexEntry
	)
	peek := func(entries []metadata.IndexEntry, want int64) {
		keys = keys[:0]
		for _, e := range entries {
			if want <= 0 {
				break
			}
			keys = append(keys, keyOf(e))
			want -= e.Length
		}
		refs, loading = slices.Grow(refs[:0], len(keys))[:len(keys)], slices.Grow(loading[:0], len(keys))[:len(keys)]
		r.cache.peekAll(keys, refs, loading)
	}
	// The windows the lookups below need from etcd are read at once
	// first, not each in its turn.
	r.windows.prepare(ctx, parts, coldMax+1, 4*(coldMax+1), func(fn func(context.Context)) bool {
		return r.goAhead(func() { fn(r.ctx) })
	})
	// Being read from here: chunks read for any partition decode their
	// extents too.
	r.noteReading(parts)
	for _, p := range parts {
		p.plan, p.ready = nil, nil
		if p.Offset < p.Start || p.Offset >= p.HW {
			continue
		}
		want := min(p.Max, room)
		// One entry past coldMax tells whether more is there; past the
		// response's room only the next entry is wanted.
		asked := coldMax + 1
		if want <= 0 {
			asked = 1
		}
		entries, _, err := r.windows.entriesInto(look, ctx, p.Topic, p.Partition, p.Offset, p.HW, asked, max(want, 1))
		if err != nil {
			continue // the read reports it
		}
		look = entries
		if want <= 0 {
			if len(entries) > 0 && !r.cache.has(keyOf(entries[0])) {
				cold = append(cold, entries[0])
			}
			continue
		}
		start := len(planBuf)
		planned := 0
	plan:
		for {
			peek(entries, want)
			for i, e := range entries {
				if want <= 0 {
					break plan
				}
				ref := refs[i]
				if !ref.ok() && loading[i] {
					ref.i = refLoading
				}
				toRead := !ref.ok() && !loading[i]
				if toRead && planned == coldMax {
					// More of the partition is there for this response: a
					// later pass (the caller's, with this one's chunks
					// cached) reads on.
					f.throttled = true
					break plan
				}
				// Stored bytes stand in for decoded ones, which are at least
				// as many: the estimate errs toward one entry more.
				want -= e.Length
				if !toRead {
					// The response's room goes to what it will serve. An
					// entry still to be read is served only if its chunk is
					// among the oldest (below), which most are not: counted
					// here, they took the room of later partitions' cached
					// entries, and the response came out far short of it.
					room -= e.Length
				}
				planBuf = append(planBuf, e)
				readyBuf = append(readyBuf, ref)
				// Entries to decode from chunks are planned like those to
				// read: a cached chunk costs nothing, and is pinned if it is
				// used.
				if toRead {
					cold = append(cold, e)
					planned++
				}
			}
			if len(entries) < asked {
				break // the partition's log ends here
			}
			// Plan on past the entries looked up so far. Once one is still
			// to be read, only as many more as coldMax allows (and one
			// past): the entries after an uncached one are mostly not
			// cached either. Until then twice as many as the last lookup:
			// a warm read plans a partition up to its maximum.
			if planned > 0 {
				asked = coldMax - planned + 1
			} else {
				asked = min(2*asked, maxLookup)
			}
			if entries, _, err = r.windows.entriesInto(entries, ctx, p.Topic, p.Partition, entries[len(entries)-1].Last+1, p.HW, asked, want); err != nil {
				break
			}
			look = entries
		}
		if len(planBuf) > start {
			p.plan = planBuf[start:len(planBuf):len(planBuf)]
			p.ready = readyBuf[start:len(readyBuf):len(readyBuf)]
		}
	}
	// The arrays as grown, for Done to give back (the parts' plans are in
	// the first two until then).
	bufs.plan, bufs.ready, bufs.cold = planBuf, readyBuf, cold
	if len(cold) == 0 {
		f.spare.Store(true)
		return f
	}
	cold = r.chunkOrdered(bufs.order[:0], cold)
	bufs.order = cold
	// Read the oldest chunks, about a response's worth, within what the
	// cache can take of what they bring in (a chunk's other partitions
	// are decoded for their readers), and always at least one.
	budget := min(maxBytes, r.cache.aheadFree())
	f.allowed = map[extentKey]bool{}
	chunks := map[chunkKey]bool{}
	var read int64
	start, later := bufs.start, bufs.later
	var buf [2]chunkSpan
	for _, e := range cold {
		var add int64
		spans := r.chunksOf(&buf, e)
		for _, s := range spans {
			if !chunks[s.key] && !r.chunks.cached(s.key) {
				add += s.end - s.start
			}
		}
		if len(spans) == 0 {
			add = e.Length
		}
		if read+add > budget && (len(f.allowed) > 0 || !force) {
			f.throttled = true
			if len(parts) >= wideFetch {
				later = append(later, e)
			}
			continue
		}
		read += add
		for _, s := range spans {
			chunks[s.key] = true
		}
		f.allowed[keyOf(e)] = true
		start = append(start, e)
		pin(spans)
	}
	bufs.start, bufs.later = start, later
	r.prefetch(start)
	return f
}

// coldMax is the most entries still to be read a plan of a response of
// maxBytes names per partition: as many as the chunks it may read, and
// two more (a partition's entries need not start in the oldest chunk).
func (r *Reader) coldMax(maxBytes int64) int {
	return int(min(maxBytes, r.cache.aheadFree())/r.chunkSize) + 2
}

// Ready reports that the plan found every entry it covers cached or being
// read: reading the parts costs no GET of the plan's.
func (f *Fetch) Ready() bool { return f.allowed == nil }

// RoomForChunk returns a channel closed once the read-ahead budget has
// room for a chunk (at once if it has), and a function to stop waiting. A
// fetch throttled with nothing to serve waits on it rather than planning
// again on a timer: its next chunks can be read only once the readers
// ahead of it have used what was read for them, and each plan of a
// thousand partitions costs milliseconds.
func (r *Reader) RoomForChunk() (<-chan struct{}, func()) {
	return r.cache.waitRoom(r.chunkSize)
}

// Throttled reports that the plan left chunks unread that the response
// had room for (for want of room in the read-ahead budget, or past the
// chunks one plan reads): the caller should look again shortly.
func (f *Fetch) Throttled() bool { return f.throttled }

// Read reads part p (one of the planned parts) from p.Offset, below p.HW
// (parts may be read at once, each by one goroutine):
// at most limit bytes, except that with first set (no earlier partition of
// the response returned batches) one whole batch is returned even when it
// exceeds limit, as Kafka does, so a batch larger than the limits never
// stalls a consumer. Entries that are not ready are read only if the plan
// allows it.
//
// It returns what it read even with an error: ErrIndex, ErrOffsetGone
// (nothing read), ErrMissingObject or ErrCorruptObject.
func (f *Fetch) Read(ctx context.Context, p *Part, limit int64, first bool) (out Batches, err error) {
	r := f.r
	// Extents the plan found cached are counted used once, at the end.
	var usedBuf [16]extentRef
	used := usedBuf[:0]
	var view cachedExtent // an extent of a chunk's item
	defer func() {
		r.cache.useAll(used)
		if out.Bytes > 0 {
			p.next, p.got, p.hw = out.Next, out.Bytes, p.HW // for Done's read ahead
			r.noteRead(p.id(), p.Offset, out.Next)
		}
		f.bytes.Add(out.Bytes)
	}()
	offset := p.Offset
	retried := false
	// exts is nil, or each entry's extent as the plan found it.
	entries, exts := p.plan, p.ready
	if len(entries) > 1 {
		out.Parts = make([][]byte, 0, len(entries))
	}
	// look is the array of the read's own lookups (the plan's is shared
	// with other parts).
	var look []metadata.IndexEntry
	drop := func() {
		entries = entries[1:]
		if len(exts) > 0 {
			exts = exts[1:]
		}
	}
	// An entry not ready is read only if the plan allows it, or with the
	// response's one spare read.
	mayRead := func(e metadata.IndexEntry) bool {
		if f.allowed[keyOf(e)] || r.ready(e) {
			return true
		}
		return out.Bytes == 0 && f.spare.CompareAndSwap(true, false)
	}
	for iter := 0; offset < p.HW && iter < 64; iter++ {
		reload := false
		if len(entries) == 0 || entries[len(entries)-1].Last < offset {
			var ok bool
			entries, ok, err = r.windows.entriesInto(look, ctx, p.Topic, p.Partition, offset, p.HW, maxLookup, max(limit-out.Bytes, 1))
			look, exts = entries, nil
			if err != nil {
				r.log.Warn("reading index failed", "topic", p.Topic.Name, "partition", p.Partition, "err", err)
				return out, fmt.Errorf("%w: %w", ErrIndex, err)
			}
			if !ok && out.Bytes == 0 {
				return out, ErrOffsetGone
			}
			if len(entries) == 0 {
				break
			}
		}
		progressed := false
		for len(entries) > 0 {
			e := entries[0]
			if e.Last < offset {
				drop()
				continue
			}
			if out.Bytes == 0 && e.First > offset {
				// The records from offset on start later: those at offset
				// are gone (retention removed them since the caller read
				// the log start). Skipping to later ones would hide that
				// from the consumer's auto.offset.reset.
				return out, ErrOffsetGone
			}
			var ext *cachedExtent
			if len(exts) > 0 && exts[0].ok() {
				// Found by the plan: an extent stays valid after its
				// eviction.
				ext = exts[0].get(&view)
				used = append(used, exts[0])
			} else {
				var err error
				if len(exts) > 0 && exts[0].loading() {
					// Being loaded when the plan found it: wait for that
					// load, with one hold of the cache's lock.
					ext, err = r.readyExtentInto(ctx, e, &view)
					if errors.Is(err, errNotReady) {
						err = nil // loaded and evicted since: read it as any other
					}
				}
				if ext == nil && err == nil {
					if !mayRead(e) {
						return out, nil // a later chunk: another response
					}
					ext, err = r.extentInto(ctx, e, &view)
				}
				if err != nil {
					if errors.Is(err, ErrMissingObject) && !retried {
						// The index may be stale (a merge replaced the entry):
						// reload it once before calling the object missing.
						retried, reload = true, true
						r.invalidate(p.Topic, p.Partition)
						entries, exts = nil, nil
						break
					}
					r.log.Error("fetch failed reading segment", "topic", p.Topic.Name, "partition", p.Partition, "offset", offset, "object", e.Object, "err", err)
					return out, err
				}
			}
			drop()
			data, next, rest := ext.take(offset, p.HW, limit-out.Bytes, first && out.Bytes == 0)
			out.add(data, next)
			if rest {
				return out, nil // the response is full
			}
			if len(data) == 0 {
				continue
			}
			offset = next
			progressed = true
			if out.Bytes >= limit {
				return out, nil
			}
		}
		if !progressed && !reload {
			break
		}
	}
	return out, nil
}

// Done ends the fetch: it starts reading what each part that returned
// batches will need next, about as much as it returned, and releases the
// plan's chunks.
//
// A wide fetch reads ahead the chunks its plan left for a later pass
// instead, about as many bytes of them as it returned: its partitions
// move through objects together, so those are what they need next, and
// finding each partition's next entries would cost an index lookup per
// partition for the same chunks.
func (f *Fetch) Done() {
	r := f.r
	defer r.chunks.unpin(f.pinned)
	defer func() {
		// The parts' plans are in the arrays given back.
		for _, p := range f.parts {
			p.plan, p.ready = nil, nil
		}
		if f.bufs != nil {
			f.bufs.release(&r.plans)
			f.bufs = nil
		}
	}()
	r.metrics.fetchBytes.Add(float64(f.bytes.Load()))
	if len(f.parts) >= wideFetch {
		for _, p := range f.parts {
			p.next, p.got = 0, 0
		}
		r.prefetch(f.laterChunks(f.bytes.Load()))
		return
	}

	var next, look []metadata.IndexEntry
	for _, p := range f.parts {
		if p.next <= 0 {
			continue
		}
		want := min(p.Max, p.got)
		entries, _, err := r.windows.entriesInto(look, r.ctx, p.Topic, p.Partition, p.next, p.hw, maxLookup, want)
		p.next, p.got = 0, 0
		if err != nil {
			continue
		}
		look = entries
		for _, e := range entries {
			if want <= 0 {
				break
			}
			want -= e.Length
			if !r.ready(e) {
				next = append(next, e)
			}
		}
	}
	slices.SortFunc(next, chunkOrder)
	r.prefetch(next)
}

// laterChunks returns the entries the plan left for a later pass
// (f.bufs.later) in their first chunks, as many as make up about bytes (at
// least one chunk, when there are any).
func (f *Fetch) laterChunks(bytes int64) []metadata.IndexEntry {
	if bytes <= 0 || f.bufs == nil {
		return nil
	}
	later := f.bufs.later
	seen := map[chunkKey]bool{}
	var (
		size int64
		buf  [2]chunkSpan
	)
	for i, e := range later {
		spans := f.r.chunksOf(&buf, e)
		add := int64(0)
		for _, s := range spans {
			if !seen[s.key] {
				seen[s.key] = true
				add += s.end - s.start
			}
		}
		if len(spans) == 0 {
			add = e.Length
		}
		if size > 0 && size+add > bytes {
			return later[:i]
		}
		size += add
	}
	return later
}

// prefetch reads entries into the cache in the background, so their GETs
// overlap each other and the client instead of running one after another
// when fetches ask for them. Entries are grouped by the chunk they are in:
// each chunk is read once (with one GET), and the entries of it decoded
// into the cache. What is read ahead and not yet asked for stays within a
// quarter of the extent cache, with at most maxPrefetches reads at a time
// per agent. It never blocks, and starts nothing once the reader is
// closed.
func (r *Reader) prefetch(entries []metadata.IndexEntry) {
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
		var buf [2]chunkSpan
		spans := r.chunksOf(&buf, e)
		id := groupID{object: e.Object, first: -1, last: e.Offset} // a direct read is a group of its own
		if len(spans) > 0 {
			id = groupID{object: e.Object, first: spans[0].start, last: spans[len(spans)-1].start}
		}
		g := byID[id]
		if g == nil {
			g = &group{spans: slices.Clone(spans)}
			byID[id] = g
			groups = append(groups, g)
		}
		g.entries = append(g.entries, e)
		g.bytes += e.Length
	}
	for _, g := range groups {
		// A chunk read brings in every active partition's extent in it
		// (neighbours), about the chunk's size in all: reserve that
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
		started := r.goAhead(func() {
			defer func() { <-r.prefetchSlots }()
			r.metrics.prefetches.Add(float64(len(g.entries)))
			keys := make([]extentKey, len(g.entries))
			for i, e := range g.entries {
				keys[i] = keyOf(e)
			}
			res := &aheadReservation{left: reserve}
			if len(g.spans) > 0 && len(g.entries) > 1 {
				res.own = make(map[extentKey]bool, len(keys))
				for _, k := range keys {
					res.own[k] = true
				}
			}
			r.cache.readAhead(r.ctx, keys, res, func(ctx context.Context, want []bool) ([]*cachedExtent, error) {
				// The group's chunks are held for all of its entries, so a
				// chunk evicted meanwhile is not read again.
				held := make([][]byte, len(g.spans))
				for i, s := range g.spans {
					data, err := r.chunk(ctx, s, res)
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
					} else if v, ok := r.cache.chunkView(keys[i]); ok {
						ce = v // decoded with the chunk's others
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
		})
		if !started {
			<-r.prefetchSlots
			r.cache.reserveAhead(-reserve)
			return
		}
	}
}

// goAhead runs fn in a goroutine Close waits for, unless the reader is
// closed.
func (r *Reader) goAhead(fn func()) bool {
	r.aheadMu.Lock()
	defer r.aheadMu.Unlock()
	if r.aheadClosed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
	return true
}

// chunkOrdered appends entries to dst in chunkOrder of the chunk each is
// first read from (of its own offset, for an extent read on its own):
// grouped by that chunk, the groups sorted. The entries a wide plan has
// still to read are thousands in a few chunks, as its partitions move
// through the objects together; sorting each of them, by object name
// among others, took a fifth of the plan.
//
// Within a group the entries keep the order they came in; what is done
// with them (reading their chunks, or leaving them for later) is done
// chunk by chunk.
func (r *Reader) chunkOrdered(dst, entries []metadata.IndexEntry) []metadata.IndexEntry {
	type groupKey struct {
		object string
		start  int64
		direct bool // an extent read on its own, at start
	}
	type group struct {
		key metadata.IndexEntry // its chunkOrder: commit time, object, start
		at  int                 // where its entries go in dst
	}
	var (
		groups []group
		byKey  = map[groupKey]int32{}
		of     = make([]int32, len(entries))
		buf    [2]chunkSpan
	)
	for i, e := range entries {
		k := groupKey{object: e.Object, start: e.Offset, direct: true}
		if spans := r.chunksOf(&buf, e); len(spans) > 0 {
			k = groupKey{object: e.Object, start: spans[0].start}
		}
		g, ok := byKey[k]
		if !ok {
			g = int32(len(groups))
			byKey[k] = g
			groups = append(groups, group{key: metadata.IndexEntry{Committed: e.Committed, Object: e.Object, Offset: k.start}})
		}
		groups[g].at++ // counts its entries until placed
		of[i] = g
	}
	order := make([]int32, len(groups))
	for g := range order {
		order[g] = int32(g)
	}
	slices.SortFunc(order, func(a, b int32) int { return chunkOrder(groups[a].key, groups[b].key) })
	at := len(dst)
	for _, g := range order {
		n := groups[g].at
		groups[g].at = at
		at += n
	}
	dst = slices.Grow(dst, len(entries))[:at]
	for i, e := range entries {
		g := &groups[of[i]]
		dst[g.at] = e
		g.at++
	}
	return dst
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
