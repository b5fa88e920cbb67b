package logread

import (
	"cmp"
	"slices"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Extents decoded together.
//
// A chunk of a flush object over thousands of partitions holds thousands
// of extents of a few KiB. As a chunk is read, the extents in it of the
// partitions being read are decoded a piece of the chunk at a time
// (neighbours, reader.go), each piece's kept as one cache item: one arena
// for all their batches, one table of
// their positions, one entry in the cache's lists. Kept one by one, each
// cost a cache item, a map entry, three allocations and the collector's
// time to trace them, which at 4096 partitions was a large part of a
// cold read's CPU.
//
// The item is used, evicted and counted against the read-ahead budget as
// a whole: it counts as read ahead, all of it, until every extent in it
// was used (or its time to be asked for ran out). Its memory is freed
// only with the whole item, so counting only its unused extents would let
// items that slow readers have not finished fill the cache, and evicting
// one then drops their extents, which are read again.

// chunkExtents are extents of one chunk of an object, decoded.
type chunkExtents struct {
	object     string
	start, end int64 // the chunk's byte range in the object
	// all holds every extent's batches back to back; each batch's
	// position counts from where its extent's batches start.
	all  cachedExtent
	ext  []chunkExtent // by stored offset
	size int64
	// unused counts the extents no fetch used yet (and that the cache
	// did not hold already when the item was offered).
	unused int
}

// chunkExtent is one extent of a chunkExtents.
type chunkExtent struct {
	offset, first  int64 // its stored offset and first offset: its extentKey
	lo, hi         int64 // its batches in all.arena
	batch, batches int32 // its run in all's batch arrays
	used           bool  // a fetch used it (or it never counted as read ahead)
}

// chunkExtentOverhead estimates an extent's share of the table, and
// chunkItemOverhead the item's own.
const (
	chunkExtentOverhead = 64
	chunkItemOverhead   = 256
)

// find returns the extent with key k, if c holds it.
func (c *chunkExtents) find(k extentKey) (int, bool) {
	if k.object != c.object || k.offset < c.start || k.offset >= c.end {
		return 0, false
	}
	i, ok := slices.BinarySearchFunc(c.ext, k.offset, func(x chunkExtent, off int64) int { return cmp.Compare(x.offset, off) })
	return i, ok && c.ext[i].first == k.first
}

// view returns extent i as a cachedExtent (sharing c's arrays, which are
// never changed).
func (c *chunkExtents) view(i int) cachedExtent {
	x := &c.ext[i]
	b, n := int(x.batch), int(x.batch+x.batches)
	return cachedExtent{
		arena:  c.all.arena[x.lo:x.hi:x.hi],
		starts: c.all.starts[b:n:n],
		bases:  c.all.bases[b:n:n],
		lasts:  c.all.lasts[b:n:n],
	}
}

// decodeChunkExtents decodes, from chunk s's bytes data, the extents
// entries (all within the chunk), in stored order, until they would take
// more than room bytes, and returns them with the entries left (in stored
// order). An extent that does not decode is left out (the fetch that
// needs it decodes it on its own and reports it).
func decodeChunkExtents(s chunkSpan, data []byte, entries []metadata.IndexEntry, room int64) (*chunkExtents, []metadata.IndexEntry) {
	slices.SortFunc(entries, func(a, b metadata.IndexEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	entries = slices.CompactFunc(entries, func(a, b metadata.IndexEntry) bool { return a.Offset == b.Offset })
	// Size the arrays once, for the extents that fit in room (with the
	// item's own overhead: c.size comes to size exactly).
	var rawTotal, batchTotal int64
	size := chunkItemOverhead + (&cachedExtent{}).size()
	n := 0
	for ; n < len(entries); n++ {
		e := entries[n]
		lo := e.Offset - s.start
		raw, err := segments.ExtentRawLen(data[lo : lo+e.Length])
		if err != nil {
			continue // decoding it below fails and leaves it out
		}
		add := int64(raw) + 24*int64(max(e.Batches, 0)) + chunkExtentOverhead
		if size+add > room {
			break
		}
		size += add
		rawTotal += int64(raw)
		batchTotal += int64(max(e.Batches, 0))
	}
	entries, rest := entries[:n], entries[n:]
	if rawTotal == 0 {
		return nil, rest
	}
	idx := make([]int64, 3*min(batchTotal, maxPrealloc/8))
	third := len(idx) / 3
	c := &chunkExtents{
		object: s.key.object,
		start:  s.start,
		end:    s.end,
		all: cachedExtent{
			arena:  make([]byte, 0, min(rawTotal, maxPrealloc)),
			starts: idx[:0:third],
			bases:  idx[third : third : 2*third],
			lasts:  idx[2*third : 2*third : 3*third],
		},
		ext: make([]chunkExtent, 0, n),
	}
	all := &c.all
	for _, e := range entries {
		lo := e.Offset - s.start
		mark, batch := len(all.arena), len(all.bases)
		if err := all.appendDecoded(e, data[lo:lo+e.Length:lo+e.Length]); err != nil {
			// Leave it out, and what it appended.
			all.arena = all.arena[:mark]
			all.starts, all.bases, all.lasts = all.starts[:batch], all.bases[:batch], all.lasts[:batch]
			continue
		}
		c.ext = append(c.ext, chunkExtent{offset: e.Offset, first: e.First, lo: int64(mark), hi: int64(len(all.arena)), batch: int32(batch), batches: int32(e.Batches)})
	}
	if len(c.ext) == 0 {
		return nil, rest
	}
	c.size = all.size() + chunkExtentOverhead*int64(cap(c.ext)) + chunkItemOverhead
	return c, rest
}
