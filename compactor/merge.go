package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Merging.
//
// Agents' flush objects hold one small extent per partition written in the
// flush, and every extent costs an index key in etcd and a GET per read.
// A merge rewrites a run of one partition's consecutive entries into a new
// object (kind merged) holding those batches as one extent, and swaps the
// entries for one covering exactly their offsets (metadata.SwapIndexEntries).
//
// Layout of a merged object: one partition, one extent, its batches in
// offset order with the skipped batches of the old entries left out. Each
// batch's baseOffset is set to the offset the commit assigned it. Readers
// set base offsets from the index anyway, so this changes nothing they
// serve, but it makes a merged object self-describing: its bytes alone
// say which offsets it holds, for tools and for rebuilding an index. The
// batches are otherwise byte for byte what the producer sent (baseOffset
// is outside the batch CRC). Runs of uncompressed client batches are
// compressed with Config.Compression, like the agents' objects.
//
// Which entries merge (planMerges): entries committed at least MergeSettle
// ago, smaller than TargetBytes, from the log start up; consecutive ones are
// grouped into runs of at most TargetBytes stored bytes (and within etcd's
// op limit). A run is merged if it holds at least MinMergeEntries fresh
// (flush) entries, or its entries share objects mostly holding other
// partitions' data (merging frees those objects sooner), or it extends an
// earlier merged entry. Merged entries are tiered: one joins a run only
// if the entries after it hold at least as many bytes as it does, so a
// slowly written partition's data is rewritten O(log(TargetBytes/flush))
// times, not once per pass.

// mergePolicy is the part of the configuration planMerges uses.
type mergePolicy struct {
	target     int64
	settle     time.Duration
	minEntries int
	maxTxnOps  int
}

func (c *Compactor) mergePolicy() mergePolicy {
	return mergePolicy{target: c.cfg.TargetBytes, settle: c.cfg.MergeSettle, minEntries: c.cfg.MinMergeEntries, maxTxnOps: c.cfg.EtcdMaxTxnOps}
}

func isMerged(object string) bool {
	_, kind, ok := segments.ParseObjectKey(object)
	return ok && kind == segments.KindMerged
}

// planMerges returns the runs of entries to merge, oldest first. entries
// are the partition's index entries in offset order (after retention);
// sizes gives the size of listed objects.
func planMerges(st metadata.PartitionState, entries []metadata.StoredIndexEntry, p mergePolicy, sizes map[string]int64, now time.Time) [][]metadata.StoredIndexEntry {
	settled := now.Add(-p.settle).UnixMilli()
	eligible := func(e metadata.StoredIndexEntry) bool {
		return e.First >= st.Start && e.Last < st.Next && e.Committed <= settled && e.Length < p.target
	}
	sparse := func(e metadata.StoredIndexEntry) bool {
		size, ok := sizes[e.Object]
		return ok && e.Length*2 < size
	}
	var (
		runs  [][]metadata.StoredIndexEntry
		cur   []metadata.StoredIndexEntry
		bytes int64
		objs  = map[string]bool{}
	)
	closeRun := func() {
		run := cur
		cur, bytes = nil, 0
		clear(objs)
		// Tiering: drop a leading merged entry larger than the rest.
		for len(run) > 1 && isMerged(run[0].Object) {
			var rest int64
			for _, e := range run[1:] {
				rest += e.Length
			}
			if run[0].Length <= rest {
				break
			}
			run = run[1:]
		}
		if len(run) < 2 {
			return
		}
		fresh, merged, thin := 0, false, false
		for _, e := range run {
			if isMerged(e.Object) {
				merged = true
			} else {
				fresh++
			}
			thin = thin || sparse(e)
		}
		if fresh >= p.minEntries || merged || thin {
			runs = append(runs, slices.Clip(run))
		}
	}
	for _, e := range entries {
		if !eligible(e) {
			closeRun()
			continue
		}
		// The swap needs a delete or put per entry and a mark per object,
		// and a compare per entry plus the fence.
		ops := len(cur) + len(objs) + 1
		if !objs[e.Object] {
			ops++
		}
		if len(cur) > 0 && (bytes+e.Length > p.target || ops > p.maxTxnOps || len(cur)+2 > p.maxTxnOps) {
			closeRun()
		}
		cur = append(cur, e)
		bytes += e.Length
		objs[e.Object] = true
	}
	closeRun()
	return runs
}

// merge rewrites one run into a merged object and swaps it into the index.
func (c *Compactor) merge(ctx context.Context, f metadata.Fence, w partitionWork, run []metadata.StoredIndexEntry, ps *PassStats) error {
	key := segments.PartitionKey{TopicID: w.id.Topic, Partition: w.id.Partition}
	b := segments.NewBuilder(c.cfg.codec)
	merged := metadata.IndexEntry{
		First:        run[0].First,
		Last:         run[len(run)-1].Last,
		MinTimestamp: math.MaxInt64,
		MaxTimestamp: math.MinInt64,
	}
	var read int64
	for _, e := range run {
		n, err := c.appendEntry(ctx, b, key, e)
		if err != nil {
			b.Reset()
			return err
		}
		merged.Batches += n
		merged.MinTimestamp = min(merged.MinTimestamp, e.MinTimestamp)
		merged.MaxTimestamp = max(merged.MaxTimestamp, e.MaxTimestamp)
		read += e.Length
	}
	obj, extents, err := b.Finish()
	if err != nil {
		return fmt.Errorf("encoding merged object: %w", err)
	}
	if len(extents) != 1 || extents[0].Batches != merged.Batches || extents[0].Records != merged.Last-merged.First+1 {
		return fmt.Errorf("%w: merged object of %d extents does not hold the run's %d batches", ErrExtentMismatch, len(extents), merged.Batches)
	}
	now := time.Now()
	merged.Object = segments.NewObjectKey(now, segments.KindMerged)
	merged.Offset, merged.Length = extents[0].Offset, extents[0].Length
	if err := c.bucket.Put(ctx, merged.Object, obj); err != nil {
		return fmt.Errorf("writing merged object %s: %w", merged.Object, err)
	}
	merged.Committed = time.Now().UnixMilli()
	attempted := false
	if err = ctx.Err(); err == nil {
		attempted = true
		err = c.store.SwapIndexEntries(ctx, f, w.id, run, merged)
	}
	if err != nil {
		// If the swap certainly did not apply (not attempted, or its
		// compare failed), the new object is referenced by nothing and
		// nobody could have learned its key: delete it now rather than
		// after the grace. If etcd did not answer, it may have applied:
		// leave the object to the collector.
		if !attempted || errors.Is(err, metadata.ErrConflict) || errors.Is(err, metadata.ErrNotLeader) {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if derr := c.bucket.Delete(dctx, []string{merged.Object}); derr != nil {
				c.log.Warn("deleting an unswapped merged object; the collector will", "object", merged.Object, "err", derr)
			}
			cancel()
		}
		if errors.Is(err, metadata.ErrConflict) {
			// Retention or DeleteRecords got there first; the next pass
			// plans again.
			c.log.Info("merge abandoned: the index changed", "topic", w.topic.Name, "partition", w.id.Partition, "first", merged.First)
			return nil
		}
		return err
	}
	ps.Merges++
	ps.MergedEntries += len(run)
	ps.MergedBytes += read
	c.metrics.objectsWritten.Inc()
	c.metrics.bytesWritten.Add(float64(len(obj)))
	c.metrics.mergedEntries.Add(float64(len(run)))
	c.metrics.mergedBytes.Add(float64(read))
	c.log.Debug("merged", "topic", w.topic.Name, "partition", w.id.Partition, "first", merged.First, "last", merged.Last,
		"entries", len(run), "object", merged.Object, "bytes_in", read, "bytes_out", len(obj))
	return nil
}

// appendEntry reads one entry's extent, checks it against the entry, and
// appends its accepted batches to b with their assigned base offsets. It
// returns how many batches it appended. The batches stay referenced by b
// until Finish.
func (c *Compactor) appendEntry(ctx context.Context, b *segments.Builder, key segments.PartitionKey, e metadata.StoredIndexEntry) (int32, error) {
	rc, err := c.bucket.GetRange(ctx, e.Object, e.Offset, e.Length)
	if err != nil {
		return 0, fmt.Errorf("reading extent %d-%d of %s: %w", e.Offset, e.Offset+e.Length, e.Object, err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return 0, fmt.Errorf("reading extent %d-%d of %s: %w", e.Offset, e.Offset+e.Length, e.Object, err)
	}
	if int64(len(data)) != e.Length {
		return 0, fmt.Errorf("%w: %s: read %d bytes at %d, the entry says %d", ErrExtentMismatch, e.Object, len(data), e.Offset, e.Length)
	}
	raws, err := segments.DecodeExtentBatches(data)
	if err != nil {
		return 0, fmt.Errorf("decoding extent of %s at %d: %w", e.Object, e.Offset, err)
	}
	next := e.First
	var kept int32
	for ord, raw := range raws {
		if slices.Contains(e.Skip, int32(ord)) {
			continue
		}
		batch, err := segments.ParseBatch(raw)
		if err != nil {
			return 0, fmt.Errorf("batch %d of %s at %d: %w", ord, e.Object, e.Offset, err)
		}
		segments.SetBaseOffset(raw, next)
		next += int64(batch.RecordCount)
		if b.Append(key, batch) < 0 {
			return 0, fmt.Errorf("batch %d of %s at %d: not appendable", ord, e.Object, e.Offset)
		}
		kept++
	}
	if kept != e.Batches || next != e.Last+1 {
		return 0, fmt.Errorf("%w: %s at %d holds %d batches with offsets %d-%d, the entry says %d batches, %d-%d",
			ErrExtentMismatch, e.Object, e.Offset, kept, e.First, next-1, e.Batches, e.First, e.Last)
	}
	return kept, nil
}
