package compactor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Garbage collection.
//
// An object is deleted when, at the time of the pass:
//
//   - it was listed in the bucket (keys that are not segment object keys,
//     segments.ParseObjectKey, are never touched);
//   - no log entry references it (among the objects of any entry of any
//     shard), as read after the listing;
//   - its creation (the later of its key's timestamp, rounded up to the
//     next second, and its LastModified) and its unreferenced mark, if
//     any, are both older than GCGrace;
//   - it carries a doom mark made at an earlier pass.
//
// Before deleting, the collector raises its horizon in etcd past the
// objects' creation times; every agent commit compares that no horizon
// reaches its objects, so a commit delayed past both the doom mark and the
// deletion (an agent paused for longer than the grace) fails instead of
// referencing a deleted object.
//
// Why this is safe. References to an object appear only by committing it:
// an agent commits an object it PUT moments before, and a merge swaps in an
// object it just wrote. An agent's commit compares, in its transaction, that
// the object has no doom mark. So the collector first marks a candidate
// (past its grace and unreferenced) and deletes it only at a later pass, if
// it is still unreferenced then: a commit that raced the mark either landed
// before it, and that later pass sees the reference (and drops the mark),
// or it came after, and failed, so its producers retry. However long etcd
// or an agent stalls between PUT and commit, an acknowledged record's
// object is never deleted. Deletion takes one more pass than the grace.
//
// References disappear through retention and merge swaps, which stamp the
// object's mark in the same transaction, so a reader that loaded the old
// entry just before has
// a full grace period to finish; and through DeleteTopic, after which the
// topic's data is unreachable anyway. An agent that crashed between PUT and
// commit leaves an object nothing will ever reference; it goes once older
// than the grace.
//
// Deletes are batched, at most segments.MaxDeleteBatch keys per request.
// Marks are removed once their object is deleted, referenced again by
// another entry (the last removal stamps it anew), or gone from the bucket,
// so they do not accumulate in etcd. Clocks: object ages use the
// compactor's clock against the agents' (key timestamps) and the bucket's
// (LastModified); keep skew well under the grace.

// checkCommitDelays warns, once per agent, about live agents whose
// --max-commit-delay reaches the grace: they may commit a flush after the
// collector doomed or deleted its object. Such a commit is refused (at the
// doom mark or the horizon), so nothing acknowledged is lost, but the
// flush's producers get an error and retry; the grace should exceed every
// agent's delay. Agents that publish no delay (older versions) are skipped.
func (c *Compactor) checkCommitDelays(ctx context.Context) {
	agents, err := c.store.Agents(ctx)
	if err != nil {
		c.log.Debug("reading the agents' commit delays", "err", err)
		return
	}
	live := make(map[string]time.Duration, len(agents))
	past := 0
	for _, a := range agents {
		if a.MaxCommitDelay < c.cfg.GCGrace {
			continue
		}
		past++
		live[a.AgentID] = a.MaxCommitDelay
		if c.latePast[a.AgentID] != a.MaxCommitDelay {
			c.log.Warn("an agent may commit flushes later than the GC grace; such commits are refused and their producers retry: raise --gc-grace above the agents' --max-commit-delay",
				"node", a.NodeID, "agent", a.AgentID, "max_commit_delay", a.MaxCommitDelay, "gc_grace", c.cfg.GCGrace)
		}
	}
	c.latePast = live
	c.metrics.agentsPastGrace.Set(float64(past))
}

// listObjects lists the bucket's segment objects.
func (c *Compactor) listObjects(ctx context.Context) ([]segments.ObjectInfo, error) {
	var out []segments.ObjectInfo
	err := c.bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		if _, _, ok := segments.ParseObjectKey(o.Key); ok {
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// collect deletes the listed objects that are unreferenced and past their
// grace, then the marks nothing needs.
func (c *Compactor) collect(ctx context.Context, f metadata.Fence, objects []segments.ObjectInfo, listStart time.Time, st *PassStats) error {
	c.checkCommitDelays(ctx)
	marks, err := c.store.ObjectMarks(ctx)
	if err != nil {
		return err
	}
	// Doom marks are read before the references: a mark seen here was made
	// before the references below were read.
	dooms, err := c.store.DoomMarks(ctx)
	if err != nil {
		return err
	}
	doomedBefore := make(map[string]bool, len(dooms))
	for _, d := range dooms {
		doomedBefore[d.Object] = true
	}
	refs := map[string]struct{}{}
	entries := 0
	if err := c.store.ForEachLogEntry(ctx, func(_ metadata.ShardID, e metadata.LogEntry) error {
		for _, o := range e.Objects {
			refs[o.Key] = struct{}{}
		}
		entries++
		return nil
	}); err != nil {
		return fmt.Errorf("reading the shard logs: %w", err)
	}
	st.Entries = entries
	c.metrics.entries.Set(float64(entries))

	markOf := make(map[string]metadata.ObjectMark, len(marks))
	for _, m := range marks {
		markOf[m.Object] = m
	}
	now := time.Now()
	listed := make(map[string]bool, len(objects))
	var (
		doomed []segments.ObjectInfo // marked at an earlier pass: delete
		toMark []string              // mark now, delete at a later pass
	)
	for _, o := range objects {
		listed[o.Key] = true
		if _, ok := refs[o.Key]; ok {
			continue
		}
		st.Unreferenced++
		if now.Sub(unreferencedSince(o, markOf)) < c.cfg.GCGrace {
			continue
		}
		if doomedBefore[o.Key] {
			doomed = append(doomed, o)
		} else {
			toMark = append(toMark, o.Key)
		}
	}
	for len(toMark) > 0 {
		n := min(len(toMark), c.cfg.EtcdMaxTxnOps-1)
		if err := c.store.DoomObjects(ctx, f, toMark[:n], now); err != nil {
			return err
		}
		toMark = toMark[n:]
	}

	deleted := map[string]bool{}
	var firstErr error
	for len(doomed) > 0 {
		n := min(len(doomed), segments.MaxDeleteBatch)
		batch := doomed[:n]
		doomed = doomed[n:]
		if err := ctx.Err(); err != nil {
			return err
		}
		keys := make([]string, n)
		var (
			bytes  int64
			newest time.Time
		)
		for i, o := range batch {
			keys[i] = o.Key
			bytes += o.Size
			if created, _, ok := segments.ParseObjectKey(o.Key); ok && created.After(newest) {
				newest = created
			}
		}
		// No commit of these may land once they are gone, however late it
		// arrives (their doom marks go with them): raise the horizon
		// every commit compares past them first.
		if err := c.store.RaiseHorizon(ctx, f, newest); err != nil {
			return err
		}
		if err := c.bucket.Delete(ctx, keys); err != nil {
			c.log.Error("deleting unreferenced objects failed", "objects", n, "err", err)
			if firstErr == nil {
				firstErr = fmt.Errorf("deleting %d objects: %w", n, err)
			}
			continue
		}
		for _, k := range keys {
			deleted[k] = true
		}
		st.Deleted += n
		st.DeletedBytes += bytes
		c.metrics.objectsDeleted.Add(float64(n))
		c.metrics.bytesDeleted.Add(float64(bytes))
	}
	c.metrics.unreferenced.Set(float64(st.Unreferenced - st.Deleted))

	// Doom marks go once their object is deleted, referenced (its commit
	// landed before the mark), or no longer in the bucket.
	var undoom []string
	for _, d := range dooms {
		_, referenced := refs[d.Object]
		if deleted[d.Object] || referenced || (!listed[d.Object] && d.Since.Before(listStart)) {
			undoom = append(undoom, d.Object)
		}
	}
	for len(undoom) > 0 {
		n := min(len(undoom), c.cfg.EtcdMaxTxnOps-1)
		if err := c.store.DeleteDoomMarks(ctx, f, undoom[:n]); err != nil {
			return err
		}
		undoom = undoom[n:]
	}

	var drop []metadata.ObjectMark
	for _, m := range marks {
		_, referenced := refs[m.Object]
		if deleted[m.Object] || referenced || (!listed[m.Object] && m.Since.Before(listStart)) {
			drop = append(drop, m)
		}
	}
	per := c.cfg.EtcdMaxTxnOps - 1
	for len(drop) > 0 {
		n := min(len(drop), per)
		err := c.store.DeleteObjectMarks(ctx, f, drop[:n])
		drop = drop[n:]
		switch {
		case err == nil:
		case errors.Is(err, metadata.ErrConflict):
			// Stamped again meanwhile; the next pass looks again.
			c.log.Debug("unreferenced marks changed while being removed", "err", err)
		default:
			return err
		}
	}
	return firstErr
}

// unreferencedSince is when an unreferenced object became eligible to
// age: the latest of its key's creation time (rounded up, since keys hold
// whole seconds), its LastModified and its mark.
func unreferencedSince(o segments.ObjectInfo, marks map[string]metadata.ObjectMark) time.Time {
	since, _, _ := segments.ParseObjectKey(o.Key)
	since = since.Add(time.Second)
	if o.LastModified.After(since) {
		since = o.LastModified
	}
	if m, ok := marks[o.Key]; ok && m.Since.After(since) {
		since = m.Since
	}
	return since
}
