// Package logwrite is the agent's write path: it turns the record batches
// produced to every partition, by every client of an agent, into segment
// objects and commits them to the partitions' logs.
//
// A batch travels:
//
//	Append → open flush → sealed (SegmentTargetBytes, FlushMaxBytes,
//	MaxCommitBytes or FlushInterval reached) → uploaded (object PUTs,
//	several in parallel) → committed (etcd, one flush at a time, in seal
//	order) → Result resolved
//
// One flush holds the batches of all partitions, in which each partition
// has one extent. A flush over a few partitions is sealed at
// SegmentTargetBytes and becomes one segment object. One over many
// partitions, whose extents would be small there, fills further (up to
// FlushMaxBytes), so each partition's extent, index entry and watermark
// update carries more bytes; it is then cut into objects of about
// SegmentTargetBytes, each a range of partitions, uploaded in parallel and
// committed together. Commits go through a
// metadata.Committer serially and in seal order, so each partition's
// batches keep the order they were appended in (idempotent producers and
// Kafka's ordering guarantee need it); uploads overlap, so a slow PUT does
// not stall the pipeline. A batch's offset is decided by its commit, and
// its Result is resolved only then: once a Result reports no error, the
// records are in the object store and in etcd.
//
// Backpressure: the bytes held in flushes that are open, uploading or
// committing never exceed Config.MaxBufferBytes; an Append beyond it waits
// until a commit frees room (a single Append larger than the whole buffer
// goes through once nothing else is held).
//
// A flush whose PUT does not succeed within UploadTimeout (retries
// included) fails its batches with ErrUpload; a commit that fails, or that
// would come more than MaxCommitDelay after its PUT (the compactor may by
// then count the object as garbage), fails them with ErrCommit. Close
// turns away new and waiting appends with ErrClosed and commits what was
// admitted; what is not committed when its context ends fails, flushes
// still queued with ErrClosed.
//
// logwrite knows nothing of the Kafka protocol: it imports metadata and
// segments from floe, never the agent nor franz-go (imports_test.go checks
// this). The agent validates batches before appending them and maps these
// errors to Kafka error codes.
package logwrite
