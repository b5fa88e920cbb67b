package compactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/metadata"
)

// retentionPlan is what retention removes from one partition.
type retentionPlan struct {
	// remove is a prefix of the partition's entries, oldest first.
	remove []metadata.StoredIndexEntry
	// start is the new log start: the first offset of the first entry
	// kept, or just past the last entry removed.
	start int64
	// behind: the partition's oldest data was past its retention.
	behind bool
}

// planRetention decides what retention removes. entries are the
// partition's index entries in offset order, all of them; st is its state.
//
// Removed, oldest first, while any rule holds:
//   - entries wholly below the log start (DeleteRecords moved it; the
//     entries are unreadable);
//   - if retention applies to the topic (cleanup.policy has delete, or not
//     compact): entries whose newest timestamp is older than retention.ms
//     (Kafka deletes a segment by its largest timestamp too), then the
//     oldest entries while the partition holds more than retention.bytes
//     stored bytes.
//
// Kafka deletes whole segments and keeps at least retention.bytes; floe's
// unit is the index entry, and it removes entries until the rest fits
// within retention.bytes. Entries a commit adds after entries were read
// are never considered, so the start never passes a record this plan did
// not look at.
func planRetention(st metadata.PartitionState, entries []metadata.StoredIndexEntry, s metadata.TopicSettings, now time.Time) retentionPlan {
	i, n := 0, len(entries)
	for i < n && entries[i].Last < st.Start {
		i++
	}
	live := i
	if s.RetentionApplies() {
		if s.RetentionMs >= 0 {
			cutoff := now.UnixMilli() - s.RetentionMs
			for i < n && entries[i].MaxTimestamp < cutoff {
				i++
			}
		}
		if s.RetentionBytes >= 0 {
			var total int64
			for _, e := range entries[i:] {
				total += e.Length
			}
			for i < n && total > s.RetentionBytes {
				total -= entries[i].Length
				i++
			}
		}
	}
	p := retentionPlan{remove: entries[:i], start: st.Start, behind: i > live}
	switch {
	case i < n:
		p.start = max(st.Start, entries[i].First)
	case n > 0:
		p.start = max(st.Start, entries[n-1].Last+1)
	}
	return p
}

// maxRetentionAttempts bounds how often one partition's retention is
// re-planned after losing a race with an agent's commit in one pass.
const maxRetentionAttempts = 8

// retain applies retention to one partition and returns its state and the
// entries left, for merging.
func (c *Compactor) retain(ctx context.Context, f metadata.Fence, w partitionWork, ps *PassStats) (metadata.PartitionState, []metadata.StoredIndexEntry, error) {
	counted := false
	for attempt := 1; ; attempt++ {
		// Entries first, then the state: a commit between the two reads
		// only adds entries the plan does not touch, and the trim compares
		// the state read.
		entries, err := c.store.PartitionIndex(ctx, w.id)
		if err != nil {
			return metadata.PartitionState{}, nil, err
		}
		st, err := c.store.GetPartitionState(ctx, w.id)
		if err != nil {
			return st, nil, err
		}
		if st.ModRevision == 0 {
			return st, nil, nil // the topic was deleted meanwhile
		}
		plan := planRetention(st, entries, w.settings, time.Now())
		if !counted && plan.behind {
			ps.Behind++
		}
		counted = true
		if len(plan.remove) == 0 && plan.start <= st.Start {
			return st, entries, nil
		}
		st, err = c.trim(ctx, f, w, st, plan, ps)
		if err == nil {
			return st, entries[len(plan.remove):], nil
		}
		if !errors.Is(err, metadata.ErrConflict) || attempt == maxRetentionAttempts {
			return st, nil, err
		}
		// An agent committed (or DeleteRecords ran) meanwhile: read again.
	}
}

// trim applies a plan in as many transactions as the op limit needs. Each
// one advances the start to the first offset of the next entry it keeps,
// so every intermediate state holds: no entry holding an offset at or
// above the start is ever removed.
func (c *Compactor) trim(ctx context.Context, f metadata.Fence, w partitionWork, st metadata.PartitionState, plan retentionPlan, ps *PassStats) (metadata.PartitionState, error) {
	rest := plan.remove
	initial := st.Start
	for {
		n, ops := 0, 1
		objs := map[string]bool{}
		for n < len(rest) {
			add := 1
			if !objs[rest[n].Object] {
				add++
			}
			if ops+add > c.cfg.EtcdMaxTxnOps && n > 0 {
				break
			}
			objs[rest[n].Object] = true
			ops += add
			n++
		}
		chunk := make([]metadata.IndexEntry, n)
		var bytes int64
		for i, e := range rest[:n] {
			chunk[i] = e.IndexEntry
			bytes += e.Length
		}
		start := plan.start
		if n < len(rest) {
			start = rest[n].First
		}
		next, err := c.store.TrimLog(ctx, f, w.id, st, start, chunk)
		if err != nil {
			return st, fmt.Errorf("trimming %s/%d to %d: %w", w.topic.Name, w.id.Partition, start, err)
		}
		st = next
		ps.RetentionEntries += n
		ps.RetentionBytes += bytes
		c.metrics.retentionEntries.Add(float64(n))
		c.metrics.retentionBytes.Add(float64(bytes))
		rest = rest[n:]
		if len(rest) == 0 {
			if st.Start != initial {
				ps.TrimmedPartitions++
			}
			c.log.Debug("retention applied", "topic", w.topic.Name, "partition", w.id.Partition, "start", st.Start, "entries_removed", len(plan.remove))
			return st, nil
		}
	}
}
