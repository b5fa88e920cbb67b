package logread

import (
	"errors"
	"fmt"
	"slices"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Decoded extents: an index entry's batches with their offsets assigned,
// as the cache holds them and fetches take them.

// maxPrealloc bounds the buffers sized from an index entry or chunk
// headers before their bytes are checked; larger extents grow as read.
const maxPrealloc = 256 << 20

// cachedExtent is one index entry's batches, back to back in arena, with
// base offsets assigned.
type cachedExtent struct {
	arena []byte
	// Of each batch: its byte position in arena, its base offset and its
	// last offset (three slices of one array: an extent costs two
	// allocations, and there are thousands of them per flush object at
	// thousands of partitions).
	starts, bases, lasts []int64
}

// size is the memory the extent holds: its batches and their positions.
func (c *cachedExtent) size() int64 {
	return int64(cap(c.arena)) + int64(cap(c.starts))*8 + int64(cap(c.bases)+cap(c.lasts))*8 + 96
}

// take returns the batches holding offset and after that fit in room
// bytes, as one slice of arena, and the offset after them; with whole set
// the first batch is taken even when it does not fit. Batches starting at
// or after below are left out (a read_committed fetch's last stable
// offset). rest reports that batches below it were left out for room. A
// batch that straddles offset is taken whole (clients skip its leading
// records).
func (c *cachedExtent) take(offset, below, room int64, whole bool) (data []byte, next int64, rest bool) {
	i, _ := slices.BinarySearch(c.lasts, offset)
	if i == len(c.lasts) || c.bases[i] >= below {
		return nil, offset, false
	}
	start := int(c.starts[i])
	if int64(len(c.arena)-start) <= room && c.bases[len(c.bases)-1] < below {
		return c.arena[start:], c.lasts[len(c.lasts)-1] + 1, false
	}
	end := start
	j := i
	for ; j < len(c.starts) && c.bases[j] < below; j++ {
		be := c.batchEnd(j)
		if int64(be-start) > room && !(whole && j == i) {
			break
		}
		end = be
	}
	if j == i {
		return nil, offset, true
	}
	return c.arena[start:end], c.lasts[j-1] + 1, j < len(c.starts) && c.bases[j] < below
}

// batchEnd returns the arena position just past batch i.
func (c *cachedExtent) batchEnd(i int) int {
	if i+1 < len(c.starts) {
		return int(c.starts[i+1])
	}
	return len(c.arena)
}

// decodeEntry decodes an index entry's extent, data, into its batches
// with their offsets.
func (r *Reader) decodeEntry(e metadata.IndexEntry, data []byte) (*cachedExtent, error) {
	if int64(len(data)) != e.Length {
		return nil, fmt.Errorf("%w: %s: read %d bytes of extent at %d, index says %d", ErrCorruptObject, e.Object, len(data), e.Offset, e.Length)
	}
	raw, err := segments.ExtentRawLen(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s at byte %d: %v", ErrCorruptObject, e.Object, e.Offset, err)
	}
	// At most as many batches as the decoded bytes hold headers: the
	// count comes from etcd, the bytes' size from checked chunk headers.
	n := max(min(int(e.Batches), raw/segments.BatchHeaderSize+1), 0)
	idx := make([]int64, 3*n)
	ce := &cachedExtent{
		arena:  make([]byte, 0, min(raw, maxPrealloc)),
		starts: idx[:0:n],
		bases:  idx[n : n : 2*n],
		lasts:  idx[2*n : 2*n : 3*n],
	}
	if err := ce.appendDecoded(e, data); err != nil {
		return nil, err
	}
	ce.arena = slices.Clip(ce.arena)
	return ce, nil
}

// appendDecoded decodes e's extent, data, onto the ends of c's arena and
// batch arrays (each batch's position counted from where the extent's
// batches start in arena), and checks it against e. On an error c may
// hold part of the extent.
func (c *cachedExtent) appendDecoded(e metadata.IndexEntry, data []byte) error {
	mark, batch := len(c.arena), len(c.bases)
	arena, next, err := segments.ReadExtent(data, e.First, e.Skip, c.arena, func(b segments.AssignedBatch) error {
		c.starts = append(c.starts, int64(b.Start-mark))
		c.bases = append(c.bases, b.Base)
		c.lasts = append(c.lasts, b.Last)
		return nil
	})
	c.arena = arena
	if err != nil {
		if errors.Is(err, segments.ErrCorruptSegment) || errors.Is(err, segments.ErrUnsupportedVersion) {
			return fmt.Errorf("%w: %s at byte %d: %v", ErrCorruptObject, e.Object, e.Offset, err)
		}
		return err
	}
	if n := len(c.bases) - batch; next-1 != e.Last || n != int(e.Batches) {
		return fmt.Errorf("%w: %s: extent holds offsets %d..%d in %d batches, index says %d..%d in %d", ErrCorruptObject, e.Object, e.First, next-1, n, e.First, e.Last, e.Batches)
	}
	return nil
}
