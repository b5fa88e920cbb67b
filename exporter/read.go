package exporter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Reading a topic's committed records, as a read_committed consumer sees
// them: below each partition's last stable offset, control batches and
// the batches of aborted transactions left out.
//
// Reads are object-granular: a flush object holds an extent of every
// partition it took records for (at 4096 partitions, thousands of extents
// of a few KiB), and a commit reads the extents it needs of one object
// with one GET (or a few, where the needed extents are far apart), for
// every partition at once, rather than a GET per partition.

const (
	// maxExtentRead bounds one extent read from the bucket; an index entry
	// longer than it is refused as corrupt rather than read into memory.
	maxExtentRead = 1 << 30
	// indexPage is how many entries of a shard's log are read from etcd at
	// a time.
	indexPage = 64
	// spanGap is the largest gap between two needed extents of an object
	// that one GET reads across rather than splitting in two.
	spanGap = 1 << 20
	// etcdReaders is how many partitions' index or aborted transactions
	// are read from etcd at once.
	etcdReaders = 16
)

// partRead is a partition being read in a commit.
type partRead struct {
	p          int32
	next, upto int64 // next offset to read; the partition's LSO
	entries    []metadata.IndexEntry
	done       bool // nothing more to read below upto
	aborted    map[int64][]metadata.AbortedTxn
}

// head is the partition's next index entry, nil when it has none.
func (pr *partRead) head() *metadata.IndexEntry {
	if pr.done || len(pr.entries) == 0 {
		return nil
	}
	return &pr.entries[0]
}

// isAborted reports whether b, at base, belongs to an aborted transaction.
func (pr *partRead) isAborted(b *segments.Batch, base int64) bool {
	if !b.Transactional() || b.Control() {
		return false
	}
	for _, a := range pr.aborted[b.ProducerID] {
		if a.First <= base && base < a.Last {
			return true
		}
	}
	return false
}

// readCommitted calls add with each committed record of parts (each from
// its next up to its upto), object by object, until about budget record
// bytes were added (measured by added). Each part's next is left past
// every offset looked at, records or not.
func (e *Exporter) readCommitted(ctx context.Context, t metadata.Topic, parts []*partRead, budget int64, added func() int64,
	add func(p int32, offset int64, logAppendTime bool, r segments.Record) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(etcdReaders)
	for _, pr := range parts {
		if pr.next >= pr.upto {
			pr.done = true
			continue
		}
		g.Go(func() error {
			aborted, err := e.store.AbortedTxns(gctx, t.ID, pr.p, pr.next, pr.upto)
			if err != nil {
				return err
			}
			pr.aborted = map[int64][]metadata.AbortedTxn{}
			for _, a := range aborted {
				pr.aborted[a.ProducerID] = append(pr.aborted[a.ProducerID], a)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var arena []byte
	for retried := false; added() < budget; {
		if err := e.refill(ctx, t, parts); err != nil {
			return err
		}
		// The object committed first among the partitions' next ones, so
		// that every partition with an extent in it has reached it when it
		// is read and it is read once; of those committed in the same
		// millisecond, the one next for the most partitions.
		heads := map[string]int{}
		var (
			object    string
			committed int64
		)
		pending := false
		for _, pr := range parts {
			pending = pending || !pr.done
			h := pr.head()
			if h == nil {
				continue
			}
			heads[h.Object]++
			if object == "" || h.Committed < committed || h.Committed == committed && heads[h.Object] > heads[object] {
				object, committed = h.Object, h.Committed
			}
		}
		if object == "" {
			// Partitions whose entries lay past a shard read shared with
			// others are read again from their own offsets, once.
			if !pending || retried {
				return nil
			}
			retried = true
			continue
		}
		retried = false
		// The partitions' consecutive entries in it, from their heads.
		var (
			readers []*partRead
			need    []metadata.IndexEntry
		)
		for _, pr := range parts {
			if h := pr.head(); h == nil || h.Object != object {
				continue
			}
			readers = append(readers, pr)
			for _, ie := range pr.entries {
				if ie.Object != object {
					break
				}
				if ie.Last < pr.next || ie.First >= pr.upto {
					continue
				}
				if ie.Length > maxExtentRead {
					return fmt.Errorf("%w: %s at %d: an extent of %d bytes", segments.ErrCorruptSegment, ie.Object, ie.Offset, ie.Length)
				}
				need = append(need, ie)
			}
		}
		spans, err := e.readSpans(ctx, object, need)
		if errors.Is(err, segments.ErrNotFound) {
			// A merge replaced the object since the index was read: read
			// those partitions' index again from where they are.
			if err := e.reindex(ctx, t, readers, object); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		for _, pr := range readers {
			for len(pr.entries) > 0 && pr.entries[0].Object == object {
				ie := pr.entries[0]
				pr.entries = pr.entries[1:]
				if ie.Last < pr.next {
					continue
				}
				if ie.First >= pr.upto {
					pr.done = true
					break
				}
				if arena, err = readExtent(spans, ie, pr, arena, add); err != nil {
					return fmt.Errorf("reading %s at %d (partition %d, offsets %d-%d): %w", ie.Object, ie.Offset, pr.p, ie.First, ie.Last, err)
				}
				pr.next = min(ie.Last+1, pr.upto)
				if pr.next >= pr.upto {
					pr.done = true
					break
				}
			}
		}
	}
	return nil
}

// refill reads the next index entries of partitions that have used those
// they had: one read of a shard's log for all its partitions, etcdReaders
// shards at a time.
func (e *Exporter) refill(ctx context.Context, t metadata.Topic, parts []*partRead) error {
	byShard := map[metadata.ShardID][]*partRead{}
	for _, pr := range parts {
		if !pr.done && len(pr.entries) == 0 {
			sh := t.Shard(pr.p)
			byShard[sh] = append(byShard[sh], pr)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(etcdReaders)
	for _, prs := range byShard {
		g.Go(func() error {
			from := make(map[int32]int64, len(prs))
			for _, pr := range prs {
				from[pr.p] = pr.next
			}
			entries, complete, err := e.store.ShardPartitionEntries(gctx, t, from, indexPage)
			if errors.Is(err, metadata.ErrConflict) {
				// etcd compacted the revision the log was searched at.
				entries, complete, err = e.store.ShardPartitionEntries(gctx, t, from, indexPage)
			}
			if err != nil {
				return fmt.Errorf("partitions %d-%d: %w", prs[0].p, prs[len(prs)-1].p, err)
			}
			for _, pr := range prs {
				es := entries[pr.p]
				switch {
				case len(es) > 0 && es[0].First < pr.upto:
					pr.entries = es
				case len(es) > 0 || complete:
					// Nothing below its LSO, or nothing at all.
					pr.done = true
				}
				// Else its entries are past those read: a later refill,
				// from the others' new offsets, reaches them.
			}
			return nil
		})
	}
	return g.Wait()
}

// reindex reads the index of readers again after object was found gone;
// an index that still names it is corrupt.
func (e *Exporter) reindex(ctx context.Context, t metadata.Topic, readers []*partRead, object string) error {
	for _, pr := range readers {
		pr.entries = nil
	}
	if err := e.refill(ctx, t, readers); err != nil {
		return err
	}
	for _, pr := range readers {
		if h := pr.head(); h != nil && h.Object == object {
			return fmt.Errorf("partition %d at offset %d: its index names %s, which the bucket does not have", pr.p, pr.next, object)
		}
	}
	return nil
}

// span is a byte range of an object, read.
type span struct {
	off  int64
	data []byte
}

// readSpans reads the byte ranges of an object that hold the extents
// need: one GET for extents closer than spanGap to each other.
func (e *Exporter) readSpans(ctx context.Context, object string, need []metadata.IndexEntry) ([]span, error) {
	slices.SortFunc(need, func(a, b metadata.IndexEntry) int { return cmp.Compare(a.Offset, b.Offset) })
	var spans []span
	for i := 0; i < len(need); {
		start, end := need[i].Offset, need[i].Offset+need[i].Length
		j := i + 1
		for ; j < len(need) && need[j].Offset <= end+spanGap; j++ {
			end = max(end, need[j].Offset+need[j].Length)
		}
		data, err := e.readRange(ctx, object, start, end-start)
		if err != nil {
			return nil, err
		}
		spans = append(spans, span{off: start, data: data})
		i = j
	}
	return spans, nil
}

// readRange reads length bytes of an object from off.
func (e *Exporter) readRange(ctx context.Context, object string, off, length int64) ([]byte, error) {
	rc, err := e.bucket.GetRange(ctx, object, off, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, length)
	if _, err := io.ReadFull(rc, data); err != nil {
		return nil, fmt.Errorf("reading %s at %d: %w", object, off, err)
	}
	return data, nil
}

// readExtent adds the committed records of an index entry, from spans,
// that lie in [pr.next, pr.upto).
func readExtent(spans []span, ie metadata.IndexEntry, pr *partRead, arena []byte, add func(p int32, offset int64, logAppendTime bool, r segments.Record) error) ([]byte, error) {
	var data []byte
	for _, s := range spans {
		if s.off <= ie.Offset && ie.Offset+ie.Length <= s.off+int64(len(s.data)) {
			data = s.data[ie.Offset-s.off : ie.Offset-s.off+ie.Length]
			break
		}
	}
	if data == nil {
		return arena, fmt.Errorf("no span read holds bytes %d-%d", ie.Offset, ie.Offset+ie.Length)
	}
	next, upto := pr.next, pr.upto
	arena, _, err := segments.ReadExtent(data, ie.First, ie.Skip, arena[:0], func(ab segments.AssignedBatch) error {
		if ab.Last < next || ab.Base >= upto {
			return nil
		}
		b, err := segments.ParseBatch(ab.Raw)
		if err != nil {
			return err
		}
		if b.Control() || pr.isAborted(&b, ab.Base) {
			return nil
		}
		logAppend := b.LogAppendTime()
		var addErr error
		err = b.Records(func(r segments.Record) bool {
			o := ab.Base + int64(r.OffsetDelta)
			if o >= next && o < upto {
				addErr = add(pr.p, o, logAppend, r)
			}
			return addErr == nil
		})
		if addErr != nil {
			return addErr
		}
		return err
	})
	return arena, err
}
