// Package compactor owns what happens to data after it is committed:
// retention, cleaning compacted topics, merging small segment objects, and
// deleting objects nothing references. One compactor is active per cluster; `floe compactor` runs
// it (any number of replicas, one elected) and `floe dev` runs one in
// process.
//
// A pass, run by the elected compactor every RetentionCheckInterval:
//
//  1. lists the bucket;
//  2. for every shard of every topic, reads the shard's log once and
//     enforces retention per partition: extents whose newest timestamp is
//     older than retention.ms, the oldest while the partition holds more
//     than retention.bytes, and those wholly below the log start (left by
//     DeleteRecords) are removed. The partitions' log starts are raised
//     first, then entries left with no extent are deleted and entries
//     that still hold other partitions' live extents are rewritten without
//     the removed ones, in fenced edits sized to etcd's limits
//     (retention.go);
//  3. cleans the partitions of compacted topics (cleanup.policy=compact)
//     that are due: a key map of fixed size of their dirty part, then a
//     rewrite from their log start keeping the latest record of each key,
//     group by group in fenced edits (clean.go);
//  4. plans merges of runs of the shard's consecutive settled entries,
//     tiered so that each byte is rewritten O(log) times, and packs the
//     runs of many shards and topics into shared objects of up to
//     TargetBytes; a partition whose share of a run reaches
//     PartitionObjectBytes gets an object of its own. Each run is then
//     swapped for one merged entry in one fenced edit (merge.go);
//  5. deletes the objects no log entry references once they have been
//     unreferenced, and existed, for longer than GCGrace (gc.go).
//
// Steps 2 to 4 run as a pipeline: Concurrency workers read, retain and
// clean shards and plan their runs (cleans take turns: they share one key
// map), one packer groups runs into jobs, and
// Concurrency workers build and swap jobs, so a pass holds a few shard
// logs and a few objects' data in memory at a time, whatever the number
// of shards.
//
// Invariants:
//
//   - Every etcd write is fenced by the election (metadata.Fence) and
//     compares what it read; a compactor that lost its leadership writes
//     nothing, and losing it cancels the pass at once. (Producer
//     snapshots written to raise a shard's producer floor are not the
//     compactor's state: they are what any agent would write from the
//     same log.)
//   - A log start never moves backwards or beyond the high watermark; the
//     extent holding the new start is never removed.
//   - A shard's latest entry is never deleted or merged (it holds the
//     high watermarks agents commit after); an entry above the shard's
//     producer floor is never merged or deleted (its producer deltas are
//     not in a snapshot yet).
//   - A merge keeps every record, offset and batch byte: the merged entry
//     covers exactly the offsets of the entries it replaces, at the key of
//     the first, and readers see either the old entries or the new one.
//   - Deletes are two-phase. Entries and extents go first (each removal
//     stamps the objects that lost a reference unreferenced in the same
//     transaction); an object goes only once nothing references it, both
//     its creation and its last stamp are older than GCGrace, and a doom
//     mark made at an earlier pass still stands. The referenced set is
//     read after the bucket is listed, so an object committed during the
//     pass is seen as referenced; an object written but not yet committed
//     is younger than the grace and survives; one whose agent crashed
//     before committing is collected once older than the grace.
//
// compactor imports metadata and segments, never agent (a test enforces
// this); cmd/floe wires it to concrete backends.
package compactor
