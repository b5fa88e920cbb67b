package compactor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/floe-io/floe/metadata"
)

// Retention.
//
// Retention works per partition but writes per shard: it decides, for
// every partition of a shard, which of its extents go (planRetention),
// and then changes the shard's log in fenced edits that raise the
// partitions' log starts and delete the entries left with no extent, or
// rewrite the entries that still hold other partitions' live extents
// without the expired ones. The shard's latest entry is never deleted (it
// holds the high watermarks), only rewritten; entries above the shard's
// producer floor are deleted only once the floor is raised past them
// (their producer deltas are then in the snapshots).

// retentionPlan is what retention changes in one shard's log.
type retentionPlan struct {
	// starts are the raised log starts, by slot.
	starts map[int32]int64
	// changes are the entries deleted or rewritten, in log order.
	changes []entryChange
	// behind is how many partitions held data past their retention;
	// extents and bytes are what the plan removes.
	behind  int
	extents int
	bytes   int64
	// needFloor is the producer floor that entries left with no extent
	// need before they can be deleted (0: none waits).
	needFloor int64
}

// entryChange is one entry retention deletes or rewrites.
type entryChange struct {
	old metadata.StoredLogEntry
	// put is the entry without its expired extents; nil deletes it.
	put *metadata.LogEntry
	// lost are the objects the entry no longer references.
	lost []string
	// extents and bytes are what it loses.
	extents int
	bytes   int64
}

// planRetention decides what retention removes from a shard. lg is the
// shard's log as read, all of it; floor its producer floor.
//
// For each partition, its extents are removed oldest first while any rule
// holds:
//   - the extent is wholly below the log start (DeleteRecords moved it;
//     the records are unreadable);
//   - if retention applies to the topic (cleanup.policy has delete, or not
//     compact): the extent's newest timestamp is older than retention.ms
//     (Kafka deletes a segment by its largest timestamp too); then, while
//     the partition's extents hold more than retention.bytes stored
//     bytes, the oldest.
//
// The partition's log start moves to the first offset of its first extent
// kept, or just past its last one removed. An entry left with no extent
// is deleted, unless it is the last one read (the shard's latest, as far
// as this plan knows) or above floor; then, like an entry that keeps some
// extents, it is rewritten without the removed ones. Entries a commit adds
// after the log was read are never considered, so no start passes a
// record this plan did not look at.
func planRetention(lg metadata.ShardLog, floor int64, s metadata.TopicSettings, now time.Time) retentionPlan {
	var p retentionPlan
	if len(lg.Entries) == 0 {
		return p
	}
	type ref struct {
		entry int
		x     metadata.Extent
	}
	byPartition := map[int32][]ref{}
	for i, e := range lg.Entries {
		for _, x := range e.Extents {
			byPartition[x.Partition] = append(byPartition[x.Partition], ref{i, x})
		}
	}
	base := lg.Entries[0].Base
	dead := make([]map[int32]bool, len(lg.Entries))
	cutoff := now.UnixMilli() - s.RetentionMs
	for _, part := range slices.Sorted(mapKeys(byPartition)) {
		xs := byPartition[part]
		slot := part - base
		start := lg.State.Partition(slot).Start
		k := 0
		for k < len(xs) && xs[k].x.Last < start {
			k++
		}
		live := k
		if s.RetentionApplies() {
			if s.RetentionMs >= 0 {
				for k < len(xs) && xs[k].x.MaxTimestamp < cutoff {
					k++
				}
			}
			if s.RetentionBytes >= 0 {
				var total int64
				for _, r := range xs[k:] {
					total += r.x.Length
				}
				for k < len(xs) && total > s.RetentionBytes {
					total -= xs[k].x.Length
					k++
				}
			}
		}
		if k > live {
			p.behind++
		}
		if k == 0 {
			continue
		}
		next := xs[k-1].x.Last + 1
		if k < len(xs) {
			next = xs[k].x.First
		}
		if next > start {
			if p.starts == nil {
				p.starts = map[int32]int64{}
			}
			p.starts[slot] = next
		}
		for _, r := range xs[:k] {
			if dead[r.entry] == nil {
				dead[r.entry] = map[int32]bool{}
			}
			dead[r.entry][part] = true
		}
	}
	last := len(lg.Entries) - 1
	for i, e := range lg.Entries {
		ch := entryChange{old: e}
		for _, x := range e.Extents {
			if dead[i][x.Partition] {
				ch.extents++
				ch.bytes += x.Length
			}
		}
		switch {
		case ch.extents == len(e.Extents) && i < last && e.SeqLast <= floor:
			ch.lost = objectKeys(e.Objects)
		case ch.extents == 0:
			if len(e.Extents) == 0 && i < last {
				// Left empty by an earlier rewrite; its producer deltas
				// are not in a snapshot yet.
				p.needFloor = max(p.needFloor, e.SeqLast)
			}
			continue
		default:
			if ch.extents == len(e.Extents) && i < last {
				p.needFloor = max(p.needFloor, e.SeqLast)
			}
			put, lost := withoutExtents(e.LogEntry, dead[i])
			ch.put, ch.lost = &put, lost
		}
		p.changes = append(p.changes, ch)
		p.extents += ch.extents
		p.bytes += ch.bytes
	}
	return p
}

// withoutExtents returns e without the extents of the given partitions,
// its objects narrowed to those still referenced, and the objects it no
// longer references.
func withoutExtents(e metadata.LogEntry, drop map[int32]bool) (metadata.LogEntry, []string) {
	out := e
	out.Extents = nil
	out.Objects = nil
	index := map[int32]int32{}
	for _, x := range e.Extents {
		if drop[x.Partition] {
			continue
		}
		i, ok := index[x.Object]
		if !ok {
			i = int32(len(out.Objects))
			index[x.Object] = i
			out.Objects = append(out.Objects, e.Objects[x.Object])
		}
		x.Object = i
		out.Extents = append(out.Extents, x)
	}
	var lost []string
	for i, o := range e.Objects {
		if _, ok := index[int32(i)]; !ok {
			lost = append(lost, o.Key)
		}
	}
	return out, lost
}

// applyEdit makes lg's entries what an edit applied at revision rev left:
// its deletes gone, its puts in place at that revision.
func applyEdit(lg *metadata.ShardLog, edit metadata.ShardEdit, rev int64) {
	changed := make(map[int64]*metadata.LogEntry, len(edit.Put)+len(edit.Delete))
	for _, d := range edit.Delete {
		changed[d.Seq] = nil
	}
	for i := range edit.Put {
		changed[edit.Put[i].Seq] = &edit.Put[i].LogEntry
	}
	entries := lg.Entries[:0:0]
	for _, e := range lg.Entries {
		put, ok := changed[e.Seq]
		switch {
		case !ok:
			entries = append(entries, e)
		case put != nil:
			entries = append(entries, metadata.StoredLogEntry{LogEntry: *put, ModRevision: rev})
		}
	}
	lg.Entries = entries
}

func objectKeys(objs []metadata.ObjectRef) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// editBytes bounds the entries one retention edit writes, so the
// transaction stays within etcd's request size (--max-request-bytes, 1.5
// MiB by default). A rewritten entry keeps its producer deltas; committers
// keep each entry within half a request, so one always fits.
const editBytes = metadata.DefaultMaxRequestBytes * 2 / 3

// maxRetentionAttempts bounds how often one shard's retention is
// re-planned after losing a race (with DeleteRecords) in one pass.
const maxRetentionAttempts = 8

// retain reads a shard's log, applies retention to it, and returns the
// log as it is afterwards, for merging.
func (c *Compactor) retain(ctx context.Context, f metadata.Fence, w shardWork, ps *PassStats) (metadata.ShardLog, error) {
	counted := false
	for attempt := 1; ; attempt++ {
		lg, err := c.store.ReadShardLog(ctx, w.id)
		if err != nil || len(lg.Entries) == 0 {
			return lg, err
		}
		now := time.Now()
		plan := planRetention(lg, lg.ProducerFloor, w.settings, now)
		if plan.needFloor > lg.ProducerFloor {
			if floor, err := c.refreshFloor(ctx, w); err == nil && floor > lg.ProducerFloor {
				lg.ProducerFloor = floor
				plan = planRetention(lg, floor, w.settings, now)
			}
		}
		if !counted {
			ps.Behind += plan.behind
			counted = true
		}
		if len(plan.changes) == 0 {
			return lg, nil
		}
		err = c.applyRetention(ctx, f, w, &lg, plan, ps)
		if err == nil {
			return lg, nil
		}
		if !errors.Is(err, metadata.ErrConflict) || attempt == maxRetentionAttempts {
			return lg, err
		}
		// DeleteRecords moved a start meanwhile (or the topic went): read
		// again.
	}
}

// refreshFloor raises a shard's producer floor to its latest entry.
func (c *Compactor) refreshFloor(ctx context.Context, w shardWork) (int64, error) {
	floor, err := c.store.RefreshProducerSnapshots(ctx, w.id)
	if err != nil && ctx.Err() == nil {
		// An agent writing snapshots at the same time, say; the entries
		// above the floor wait for a later pass.
		c.log.Debug("raising the producer floor failed", "topic", w.topic.Name, "shard", w.id.Shard, "err", err)
	}
	return floor, err
}

// applyRetention makes a plan's changes in as many edits as the op limit
// needs. The first raises the starts, so every intermediate state holds:
// an entry is removed only once the offsets it held are below the start.
// lg is updated to what the edits wrote.
func (c *Compactor) applyRetention(ctx context.Context, f metadata.Fence, w shardWork, lg *metadata.ShardLog, plan retentionPlan, ps *PassStats) error {
	rest := plan.changes
	starts := plan.starts
	for len(rest) > 0 {
		edit := metadata.ShardEdit{Shard: lg.Shard, State: lg.State, Starts: starts}
		marks := map[string]bool{}
		n, bytes := 0, 0
		for n < len(rest) {
			ch := rest[n]
			added := 0
			for _, o := range ch.lost {
				if !marks[o] {
					added++
				}
			}
			size := 256 * (1 + added) // keys and marks
			if ch.put != nil {
				size += ch.put.SizeBound()
			}
			if n > 0 && (len(edit.Delete)+len(edit.Put)+1+len(marks)+added+1 > c.cfg.EtcdMaxTxnOps || bytes+size > editBytes) {
				break
			}
			bytes += size
			for _, o := range ch.lost {
				marks[o] = true
			}
			if ch.put == nil {
				edit.Delete = append(edit.Delete, ch.old)
			} else {
				edit.Put = append(edit.Put, metadata.StoredLogEntry{LogEntry: *ch.put, ModRevision: ch.old.ModRevision})
			}
			edit.Unreferenced = append(edit.Unreferenced, ch.lost...)
			n++
		}
		rev, err := c.store.EditShard(ctx, f, edit)
		if err != nil {
			return fmt.Errorf("retention of %s shard %d: %w", w.topic.Name, w.id.Shard, err)
		}
		for _, ch := range rest[:n] {
			if ch.put == nil {
				ps.RetentionEntries++
				c.metrics.retentionEntries.Inc()
			}
			ps.RetentionExtents += ch.extents
			ps.RetentionBytes += ch.bytes
			c.metrics.retentionExtents.Add(float64(ch.extents))
			c.metrics.retentionBytes.Add(float64(ch.bytes))
		}
		// What the edit wrote is now the log as known.
		applyEdit(lg, edit, rev)
		if len(starts) > 0 {
			for slot, v := range starts {
				for int(slot) >= len(lg.State.Starts) {
					lg.State.Starts = append(lg.State.Starts, 0)
				}
				lg.State.Starts[slot] = max(lg.State.Starts[slot], v)
			}
			lg.State.StartsRev = rev
			ps.TrimmedPartitions += len(starts)
			// Aborted transactions wholly below the new starts: no
			// fetch reads them any more.
			first, _ := w.topic.ShardPartitions(w.id.Shard)
			for slot, v := range starts {
				if err := c.store.TrimAbortedTxns(ctx, w.topic.ID, first+slot, v); err != nil && ctx.Err() == nil {
					c.log.Debug("trimming aborted transactions failed; they are trimmed at the next raise of the log start", "topic", w.topic.Name, "partition", first+slot, "err", err)
				}
			}
			starts = nil
		}
		rest = rest[n:]
	}
	c.log.Debug("retention applied", "topic", w.topic.Name, "shard", w.id.Shard, "extents_removed", plan.extents, "entries_changed", len(plan.changes))
	return nil
}
