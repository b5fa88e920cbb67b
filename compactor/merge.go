package compactor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Merging.
//
// An agent's flush writes one object and one log entry per shard it
// touched; a topic of thousands of partitions gets entries holding a few
// KiB per partition. A merge replaces a run of a shard's consecutive
// entries with one merged entry (at the run's first key, covering exactly
// the same offsets) whose extents are in objects the compactor wrote:
//
//   - Which entries (planMerges): entries committed at least MergeSettle
//     ago, at or below the shard's producer floor (a merged entry carries
//     no producer deltas), never the shard's latest entry (it holds the
//     high watermarks), and holding less than TargetBytes; consecutive
//     ones are grouped into runs of at most TargetBytes and within etcd's
//     op limit. A run is merged if it holds at least MinMergeEntries fresh
//     entries, or entries whose objects are mostly other shards' data, or
//     an earlier merged entry.
//   - Tiers: a merged entry joins a run only if the entries after it hold
//     at least as many bytes as it does, so a shard's data is rewritten
//     O(log(TargetBytes/increment)) times, not once per pass, and entries
//     that reached TargetBytes are final.
//   - Where the data goes: a partition whose share of a run reaches
//     PartitionObjectBytes gets an object of its own; every other
//     partition's batches go into an object shared with the runs of many
//     other shards and topics (a mergeJob), up to TargetBytes. A pass
//     over thousands of small partitions therefore writes a few large
//     objects, not one per partition, and a merged entry's extents may
//     point at several objects.
//
// Layout of a merged object: one extent per partition (segments sorts
// them), each holding the partition's batches of its run in offset order,
// with the skipped batches of the old entries left out. Each batch's
// baseOffset is set to the offset the commit assigned it. Readers set base
// offsets from the log anyway, so this changes nothing they serve, but it
// makes a merged object self-describing: its bytes alone say which offsets
// it holds. The batches are otherwise byte for byte what the producer sent
// (baseOffset is outside the batch CRC). Runs of uncompressed client
// batches are compressed with Config.Compression, like the agents'
// objects.
//
// A job writes its objects first, then swaps each run's entries for its
// merged entry (metadata.Store.EditShard, one fenced transaction per
// shard). A swap that loses a race (ErrConflict: the entries changed) is
// dropped and planned again next pass; an object none of whose runs can
// have been swapped is deleted at once, the rest is left to garbage
// collection.

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

// entryBytes is the stored bytes of an entry's extents.
func entryBytes(e *metadata.LogEntry) int64 {
	var n int64
	for _, x := range e.Extents {
		n += x.Length
	}
	return n
}

func isMerged(e *metadata.LogEntry) bool { return e.Flags&metadata.EntryMerged != 0 }

// planMerges returns the runs of a shard's entries to merge, oldest
// first. lg is the shard's log (after retention), floor its producer
// floor; sizes gives the size of listed objects whose entries do not
// record it.
func planMerges(lg metadata.ShardLog, floor int64, p mergePolicy, sizes map[string]int64, now time.Time) [][]metadata.StoredLogEntry {
	settled := now.Add(-p.settle).UnixMilli()
	n := len(lg.Entries)
	eligible := func(i int) bool {
		e := &lg.Entries[i]
		if i == n-1 || e.SeqLast > floor || e.Committed > settled || entryBytes(&e.LogEntry) >= p.target {
			return false
		}
		// Extents below the log start are retention's; a run never
		// carries them into a merged entry.
		for _, x := range e.Extents {
			if x.Last < lg.State.Partition(x.Partition-e.Base).Start {
				return false
			}
		}
		return true
	}
	var runs [][]metadata.StoredLogEntry
	for i := 0; i < n; {
		if !eligible(i) {
			i++
			continue
		}
		j := i + 1
		for j < n && eligible(j) {
			j++
		}
		runs = append(runs, splitRuns(lg.Entries[i:j], p, sizes)...)
		i = j
	}
	return runs
}

// splitRuns cuts consecutive eligible entries into the runs worth
// merging.
func splitRuns(entries []metadata.StoredLogEntry, p mergePolicy, sizes map[string]int64) [][]metadata.StoredLogEntry {
	var runs [][]metadata.StoredLogEntry
	objs := map[string]bool{}
	for i := 0; i < len(entries); {
		clear(objs)
		j, bytes := i, int64(0)
		for ; j < len(entries); j++ {
			e := &entries[j].LogEntry
			added := 0
			for _, o := range e.Objects {
				if !objs[o.Key] {
					added++
				}
			}
			// The swap needs a delete or put per entry, a mark per object
			// and the fence; as many compares.
			ops := j - i + 1 + len(objs) + added + 1
			if j > i && (bytes+entryBytes(e) > p.target || ops > p.maxTxnOps) {
				break
			}
			for _, o := range e.Objects {
				objs[o.Key] = true
			}
			bytes += entryBytes(e)
		}
		run := entries[i:j]
		// Tiers: a merged entry larger than what follows it waits, and the
		// run starts after it.
		if head := entryBytes(&run[0].LogEntry); len(run) > 1 && isMerged(&run[0].LogEntry) && head > bytes-head {
			i++
			continue
		}
		if len(run) >= 2 && worthMerging(run, p, sizes) {
			runs = append(runs, slices.Clip(run))
		}
		i = j
	}
	return runs
}

// worthMerging: enough fresh entries, an earlier merged entry to extend,
// or entries whose objects mostly hold other shards' data.
func worthMerging(run []metadata.StoredLogEntry, p mergePolicy, sizes map[string]int64) bool {
	fresh := 0
	for i := range run {
		e := &run[i].LogEntry
		if isMerged(e) {
			return true
		}
		fresh++
		var size int64
		for _, o := range e.Objects {
			if o.Size > 0 {
				size += o.Size
			} else {
				size += sizes[o.Key]
			}
		}
		if entryBytes(e)*2 < size {
			return true
		}
	}
	return fresh >= p.minEntries
}

// mergeRun is one run of a shard's entries to replace with a merged
// entry.
type mergeRun struct {
	w       shardWork
	entries []metadata.StoredLogEntry
	// bytes is the stored bytes of the run's extents; own the partitions
	// whose share reaches PartitionObjectBytes (ascending), shared the
	// bytes of the others and parts how many others there are.
	bytes  int64
	own    []int32
	shared int64
	parts  int

	// Filled in by the job: where each partition's merged extent went,
	// and why the run was given up.
	placed map[int32]placed
	err    error
}

// placed is a partition's merged extent in an object written.
type placed struct {
	obj *mergedObject
	x   metadata.Extent // Object is set when the entry is made
}

// mergedObject is an object a job wrote, and the runs with extents in it.
type mergedObject struct {
	ref  metadata.ObjectRef
	runs []*mergeRun
}

func newMergeRun(w shardWork, entries []metadata.StoredLogEntry, partitionObject int64) *mergeRun {
	share := map[int32]int64{}
	for _, e := range entries {
		for _, x := range e.Extents {
			share[x.Partition] += x.Length
		}
	}
	r := &mergeRun{w: w, entries: entries}
	for p, b := range share {
		r.bytes += b
		if b >= partitionObject {
			r.own = append(r.own, p)
		} else {
			r.shared += b
			r.parts++
		}
	}
	slices.Sort(r.own)
	return r
}

func (r *mergeRun) hasOwn(p int32) bool {
	_, ok := slices.BinarySearch(r.own, p)
	return ok
}

// maxObjectExtents bounds the partitions of one shared object (its
// footer takes 72 bytes per partition).
const maxObjectExtents = 1 << 14

// mergeJob is the runs whose shared partitions go into one object.
type mergeJob struct {
	runs   []*mergeRun
	shared int64
	parts  int
	shards map[metadata.ShardID]bool
}

// packer groups runs into jobs: a job's shared object holds up to target
// bytes, and at most one run of each shard (a partition has one extent
// per object).
type packer struct {
	target int64
	open   *mergeJob
}

// add adds a run and returns the jobs it completed.
func (p *packer) add(r *mergeRun) []*mergeJob {
	var done []*mergeJob
	if j := p.open; j != nil && len(j.runs) > 0 &&
		(j.shards[r.w.id] || j.shared+r.shared > p.target || j.parts+r.parts > maxObjectExtents) {
		done = append(done, j)
		p.open = nil
	}
	if p.open == nil {
		p.open = &mergeJob{shards: map[metadata.ShardID]bool{}}
	}
	j := p.open
	j.runs = append(j.runs, r)
	j.shared += r.shared
	j.parts += r.parts
	j.shards[r.w.id] = true
	if j.shared >= p.target {
		done = append(done, j)
		p.open = nil
	}
	return done
}

// flush returns the open job, if any.
func (p *packer) flush() *mergeJob {
	j := p.open
	p.open = nil
	return j
}

// source is what one object takes from a run: every partition without
// an object of its own, or just one partition.
type source struct {
	run       *mergeRun
	partition int32 // -1: the run's shared partitions
}

func (s source) takes(p int32) bool {
	if s.partition >= 0 {
		return p == s.partition
	}
	return !s.run.hasOwn(p)
}

// runJob writes a job's objects and swaps its runs' merged entries in. A
// run that cannot be read or swapped is given up alone (logged, counted
// in ps.Errors); the error returned ends the pass (lost leadership, ctx
// ended).
func (c *Compactor) runJob(ctx context.Context, f metadata.Fence, job *mergeJob, ps *PassStats) error {
	start := time.Now()
	var written []*mergedObject
	abandon := func(err error) error {
		c.deleteUnswapped(ctx, written)
		if fatal(ctx, err) {
			return err
		}
		c.metrics.errors.WithLabelValues("merge").Inc()
		c.log.Error("merge failed", "runs", len(job.runs), "err", err)
		ps.Errors++
		return nil
	}
	giveUp := func(r *mergeRun, err error) {
		r.err = err
		c.metrics.errors.WithLabelValues("merge").Inc()
		c.log.Error("merge failed", "topic", r.w.topic.Name, "shard", r.w.id.Shard,
			"first", r.entries[0].Seq, "last", r.entries[len(r.entries)-1].SeqLast, "err", err)
		ps.Errors++
	}
	for _, r := range job.runs {
		r.placed = map[int32]placed{}
	}

	// The shared object, then each partition's own.
	var srcs []source
	for _, r := range job.runs {
		if r.shared > 0 {
			srcs = append(srcs, source{run: r, partition: -1})
		}
	}
	for len(srcs) > 0 {
		obj, bad, err := c.build(ctx, srcs, ps)
		if err == nil {
			if obj != nil {
				written = append(written, obj)
			}
			break
		}
		if bad < 0 || fatal(ctx, err) {
			return abandon(err)
		}
		giveUp(srcs[bad].run, err)
		srcs = slices.Delete(srcs, bad, bad+1)
	}
	for _, r := range job.runs {
		for _, p := range r.own {
			if r.err != nil {
				break
			}
			obj, bad, err := c.build(ctx, []source{{run: r, partition: p}}, ps)
			switch {
			case err == nil:
				written = append(written, obj)
			case bad < 0 || fatal(ctx, err):
				return abandon(err)
			default:
				giveUp(r, err)
			}
		}
	}

	// Swaps, one shard at a time.
	maybe := map[*mergeRun]bool{} // swapped, or perhaps swapped
	var fatalErr error
	for _, r := range job.runs {
		if r.err != nil {
			continue
		}
		if fatalErr = ctx.Err(); fatalErr != nil {
			break
		}
		if len(r.placed) != r.parts+len(r.own) {
			giveUp(r, fmt.Errorf("%w: %d of the run's %d partitions were written", ErrExtentMismatch, len(r.placed), r.parts+len(r.own)))
			continue
		}
		err := c.swap(ctx, f, r, ps)
		switch {
		case err == nil:
			maybe[r] = true
		case errors.Is(err, metadata.ErrConflict):
			// Retention or a topic deletion got there first; the next pass
			// plans again.
			c.log.Info("merge abandoned: the log changed", "topic", r.w.topic.Name, "shard", r.w.id.Shard, "first", r.entries[0].Seq)
		case errors.Is(err, metadata.ErrNotLeader):
			fatalErr = err
		default:
			// etcd did not answer: the swap may have applied.
			maybe[r] = true
			if fatal(ctx, err) {
				fatalErr = err
			} else {
				giveUp(r, err)
			}
		}
		if fatalErr != nil {
			break
		}
	}
	var unswapped []*mergedObject
	for _, o := range written {
		if !slices.ContainsFunc(o.runs, func(r *mergeRun) bool { return maybe[r] }) {
			unswapped = append(unswapped, o)
		}
	}
	c.deleteUnswapped(ctx, unswapped)
	c.log.Debug("merge job done", "runs", len(job.runs), "shared_bytes", job.shared, "objects", len(written),
		"unswapped", len(unswapped), "took", time.Since(start).Round(time.Millisecond))
	return fatalErr
}

// deleteUnswapped deletes objects that no merged entry references, nor
// can: nobody learned their keys. Should that fail, the collector deletes
// them after their grace.
func (c *Compactor) deleteUnswapped(ctx context.Context, objs []*mergedObject) {
	if len(objs) == 0 {
		return
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.ref.Key
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for len(keys) > 0 {
		n := min(len(keys), segments.MaxDeleteBatch)
		if err := c.bucket.Delete(dctx, keys[:n]); err != nil {
			c.log.Warn("deleting unswapped merged objects; the collector will", "objects", n, "err", err)
		}
		keys = keys[n:]
	}
}

// swap replaces a run's entries with its merged entry.
func (c *Compactor) swap(ctx context.Context, f metadata.Fence, r *mergeRun, ps *PassStats) error {
	first, last := r.entries[0], r.entries[len(r.entries)-1]
	m := metadata.LogEntry{
		Seq: first.Seq, SeqLast: last.SeqLast, Committed: last.Committed,
		Base: last.Base, Nexts: slices.Clone(last.Nexts), Stables: slices.Clone(last.Stables), Flags: metadata.EntryMerged,
	}
	index := map[*mergedObject]int32{}
	for _, p := range slices.Sorted(mapKeys(r.placed)) {
		pl := r.placed[p]
		i, ok := index[pl.obj]
		if !ok {
			i = int32(len(m.Objects))
			index[pl.obj] = i
			m.Objects = append(m.Objects, pl.obj.ref)
		}
		x := pl.x
		x.Object = i
		m.Extents = append(m.Extents, x)
	}
	var lost []string
	for _, e := range r.entries {
		lost = append(lost, objectKeys(e.Objects)...)
	}
	edit := metadata.ShardEdit{
		Shard:        r.w.id,
		Put:          []metadata.StoredLogEntry{{LogEntry: m, ModRevision: first.ModRevision}},
		Delete:       r.entries[1:],
		Unreferenced: lost,
	}
	if _, err := c.store.EditShard(ctx, f, edit); err != nil {
		return err
	}
	ps.Merges++
	ps.MergedEntries += len(r.entries)
	ps.MergedBytes += r.bytes
	c.metrics.mergedEntries.Add(float64(len(r.entries)))
	c.metrics.mergedBytes.Add(float64(r.bytes))
	c.log.Debug("merged", "topic", r.w.topic.Name, "shard", r.w.id.Shard, "first", first.Seq, "last", last.SeqLast,
		"entries", len(r.entries), "objects", len(m.Objects), "bytes", r.bytes)
	return nil
}

// build writes one merged object of the sources' batches and records
// where each partition's extent went. A source whose extents cannot be
// read or do not match their entries fails alone: bad is its index (-1
// when the failure is the object's, such as its PUT), and nothing is
// written. With nothing to write it returns a nil object.
func (c *Compactor) build(ctx context.Context, srcs []source, ps *PassStats) (obj *mergedObject, bad int, err error) {
	b := segments.NewBuilder(c.cfg.codec)
	defer b.Reset()
	type part struct {
		src int
		x   *metadata.Extent
	}
	parts := map[segments.PartitionKey]part{}
	pcs := planPieces(srcs)
	for i := 0; i < len(pcs); {
		// A window of pieces is read with parallel GETs, then appended in
		// order.
		j, n, bytes := i, 0, int64(0)
		for ; j < len(pcs); j++ {
			if j > i && (n+len(pcs[j].spans) > readWindowSpans || bytes+pcs[j].bytes > readWindowBytes) {
				break
			}
			n += len(pcs[j].spans)
			bytes += pcs[j].bytes
		}
		window := pcs[i:j]
		c.fetch(ctx, window)
		for _, pc := range window {
			if err := pc.err(); err != nil {
				return nil, pc.src, err
			}
			topic := srcs[pc.src].run.w.id.Topic
			for k, x := range pc.xs {
				key := segments.PartitionKey{TopicID: topic, Partition: x.Partition}
				pt, ok := parts[key]
				if !ok {
					pt = part{src: pc.src, x: &metadata.Extent{Partition: x.Partition, First: -1, MinTimestamp: math.MaxInt64, MaxTimestamp: math.MinInt64}}
					parts[key] = pt
				}
				if err := appendExtent(b, key, pc.object, x, pc.extent(k), pt.x); err != nil {
					return nil, pc.src, err
				}
			}
			pc.release()
		}
		i = j
	}
	if len(parts) == 0 {
		return nil, -1, nil
	}
	o, extents, err := b.FinishObject()
	if err != nil {
		return nil, -1, fmt.Errorf("encoding merged object: %w", err)
	}
	defer o.Release()
	if len(extents) != len(parts) {
		return nil, -1, fmt.Errorf("%w: merged object of %d extents for %d partitions", ErrExtentMismatch, len(extents), len(parts))
	}
	for _, e := range extents {
		pt, ok := parts[e.Key]
		if !ok || e.Batches != pt.x.Batches || e.Records != pt.x.Last-pt.x.First+1 {
			return nil, -1, fmt.Errorf("%w: merged extent of %v holds %d batches of %d records, the entries %d batches with offsets %d-%d",
				ErrExtentMismatch, e.Key, e.Batches, e.Records, pt.x.Batches, pt.x.First, pt.x.Last)
		}
		pt.x.Offset, pt.x.Length = e.Offset, e.Length
	}
	key := segments.NewObjectKey(time.Now(), segments.KindMerged)
	if err := c.bucket.Put(ctx, key, o.Bytes); err != nil {
		return nil, -1, fmt.Errorf("writing merged object %s: %w", key, err)
	}
	size := int64(len(o.Bytes))
	ps.ObjectsWritten++
	ps.BytesWritten += size
	c.metrics.objectsWritten.Inc()
	c.metrics.bytesWritten.Add(float64(size))
	obj = &mergedObject{ref: metadata.ObjectRef{Key: key, Size: size}}
	used := make([]bool, len(srcs))
	for _, pt := range parts {
		srcs[pt.src].run.placed[pt.x.Partition] = placed{obj: obj, x: *pt.x}
		used[pt.src] = true
	}
	for i, s := range srcs {
		if used[i] && !slices.Contains(obj.runs, s.run) {
			obj.runs = append(obj.runs, s.run)
		}
	}
	return obj, -1, nil
}

// appendExtent checks one extent's bytes against its entry and appends
// its batches that are part of the log to b, with their assigned base
// offsets, extending m (the partition's merged extent). The batches are
// copied out of the decoder's buffers into one allocation of the extent's
// raw size, which b references until it is finished.
func appendExtent(b *segments.Builder, k segments.PartitionKey, object string, x metadata.Extent, data []byte, m *metadata.Extent) error {
	if m.First >= 0 && x.First != m.Last+1 {
		return fmt.Errorf("%w: %s at %d holds offsets from %d; the merged extent of partition %d ends at %d",
			ErrExtentMismatch, object, x.Offset, x.First, x.Partition, m.Last)
	}
	rawLen, err := segments.ExtentRawLen(data)
	if err != nil {
		return fmt.Errorf("decoding extent of %s at %d: %w", object, x.Offset, err)
	}
	var kept int32
	_, next, err := segments.ReadExtent(data, x.First, x.Skip, make([]byte, 0, rawLen), func(ab segments.AssignedBatch) error {
		parsed, err := segments.ParseBatch(ab.Raw)
		if err != nil {
			return fmt.Errorf("batch %d of %s at %d: %w", ab.Ordinal, object, x.Offset, err)
		}
		if b.Append(k, parsed) < 0 {
			return fmt.Errorf("batch %d of %s at %d: not appendable", ab.Ordinal, object, x.Offset)
		}
		kept++
		return nil
	})
	if err != nil {
		return fmt.Errorf("decoding extent of %s at %d: %w", object, x.Offset, err)
	}
	if kept != x.Batches || next != x.Last+1 {
		return fmt.Errorf("%w: %s at %d holds %d batches with offsets %d-%d, the entry says %d batches, %d-%d",
			ErrExtentMismatch, object, x.Offset, kept, x.First, next-1, x.Batches, x.First, x.Last)
	}
	if m.First < 0 {
		m.First = x.First
	}
	m.Last = x.Last
	m.Batches += kept
	m.MinTimestamp = min(m.MinTimestamp, x.MinTimestamp)
	m.MaxTimestamp = max(m.MaxTimestamp, x.MaxTimestamp)
	return nil
}
