package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Reading a partition's committed records, as a read_committed consumer
// sees them: below the last stable offset, control batches and the
// batches of aborted transactions left out.

// maxExtentRead bounds one extent read from the bucket; an index entry
// longer than it is refused as corrupt rather than read into memory.
const maxExtentRead = 1 << 30

// readPartition calls add with each committed record of partition p of t
// from offset from (inclusive) to upto (exclusive), in offset order,
// reading extents until about budget bytes. It returns the offset to
// read from next time: past every offset it looked at, records or not.
func (e *Exporter) readPartition(ctx context.Context, t metadata.Topic, p int32, from, upto, budget int64, add func(offset int64, logAppendTime bool, r segments.Record)) (int64, error) {
	if from >= upto {
		return from, nil
	}
	aborted, err := e.store.AbortedTxns(ctx, t.ID, p, from, upto)
	if err != nil {
		return from, err
	}
	byProducer := map[int64][]metadata.AbortedTxn{}
	for _, a := range aborted {
		byProducer[a.ProducerID] = append(byProducer[a.ProducerID], a)
	}
	isAborted := func(b *segments.Batch, base int64) bool {
		if !b.Transactional() || b.Control() {
			return false
		}
		for _, a := range byProducer[b.ProducerID] {
			if a.First <= base && base < a.Last {
				return true
			}
		}
		return false
	}
	next := from
	var arena []byte
	for next < upto && budget > 0 {
		entries, err := e.store.PartitionEntries(ctx, t, p, next, 64)
		if err != nil {
			return next, err
		}
		if len(entries) == 0 {
			break
		}
		progressed := false
		for _, ie := range entries {
			if ie.Last < next {
				continue
			}
			if ie.First >= upto || budget <= 0 {
				return next, nil
			}
			if ie.Length > maxExtentRead {
				return next, fmt.Errorf("%w: %s at %d: an extent of %d bytes", segments.ErrCorruptSegment, ie.Object, ie.Offset, ie.Length)
			}
			data, err := e.readExtent(ctx, ie)
			if errors.Is(err, segments.ErrNotFound) {
				// A merge replaced the object since the index was read:
				// read the index again from here.
				break
			}
			if err != nil {
				return next, err
			}
			arena, _, err = segments.ReadExtent(data, ie.First, ie.Skip, arena[:0], func(ab segments.AssignedBatch) error {
				if ab.Last < next || ab.Base >= upto {
					return nil
				}
				b, err := segments.ParseBatch(ab.Raw)
				if err != nil {
					return err
				}
				if b.Control() || isAborted(&b, ab.Base) {
					return nil
				}
				logAppend := b.LogAppendTime()
				return b.Records(func(r segments.Record) bool {
					o := ab.Base + int64(r.OffsetDelta)
					if o >= next && o < upto {
						add(o, logAppend, r)
					}
					return true
				})
			})
			if err != nil {
				return next, fmt.Errorf("reading %s at %d (partition %d, offsets %d-%d): %w", ie.Object, ie.Offset, p, ie.First, ie.Last, err)
			}
			next = min(ie.Last+1, upto)
			budget -= ie.Length
			progressed = true
		}
		if !progressed {
			// Every entry read was gone (merged meanwhile) or before next:
			// read the index again, once, before giving up.
			entries2, err := e.store.PartitionEntries(ctx, t, p, next, 1)
			if err != nil {
				return next, err
			}
			if len(entries2) == 0 || entries2[0].Object == entries[0].Object {
				return next, fmt.Errorf("partition %d at offset %d: its index names %s, which the bucket does not have", p, next, entries[0].Object)
			}
		}
	}
	return next, nil
}

// readExtent reads an index entry's bytes from the bucket.
func (e *Exporter) readExtent(ctx context.Context, ie metadata.IndexEntry) ([]byte, error) {
	rc, err := e.bucket.GetRange(ctx, ie.Object, ie.Offset, ie.Length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, ie.Length)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("reading %s at %d: %w", ie.Object, ie.Offset, err)
	}
	return data, nil
}
