// Package compactor owns what happens to data after it is committed:
// retention, merging small segment objects, and deleting objects nothing
// references. One compactor is active per cluster; `floe compactor` runs
// it (any number of replicas, one elected) and `floe dev` runs one in
// process.
//
// A pass, run by the elected compactor every RetentionCheckInterval:
//
//  1. lists the bucket;
//  2. for every partition, enforces retention: index entries whose newest
//     timestamp is older than retention.ms, the oldest entries while the
//     partition holds more than retention.bytes, and entries wholly below
//     the log start (left by DeleteRecords) are removed, and the log start
//     advances to the first offset still held, in one etcd transaction per
//     op-limit's worth of entries;
//  3. for every partition, merges runs of consecutive small index entries
//     into one new object holding that partition's batches as one extent,
//     then swaps the entries for one in one etcd transaction;
//  4. deletes the objects no index entry references once they have been
//     unreferenced, and existed, for longer than GCGrace.
//
// Invariants:
//
//   - Every etcd write is fenced by the election (metadata.Fence) and
//     compares what it read; a compactor that lost its leadership writes
//     nothing, and losing it cancels the pass at once.
//   - The log start never moves backwards or beyond the high watermark;
//     the entry holding the new start is never removed.
//   - A merge keeps every record, offset and batch byte: the merged entry
//     covers exactly the union of the entries it replaces, and readers see
//     either the old entries or the new one.
//   - Deletes are two-phase. Index entries go first (each removal stamps
//     its objects unreferenced in the same transaction); an object goes
//     only once nothing references it and both its creation and its last
//     stamp are older than GCGrace. The referenced set is read after the
//     bucket is listed, so an object committed during the pass is seen as
//     referenced; an object written but not yet committed is younger than
//     the grace and survives; one whose agent crashed before committing is
//     collected once older than the grace.
//
// compactor imports metadata and segments, never agent (a test enforces
// this); cmd/floe wires it to concrete backends.
package compactor
