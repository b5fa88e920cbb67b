// Package logread is an agent's read path: it turns a fetch's partitions
// and offsets into record batches with their offsets assigned, from
// segment objects in the bucket and the index in etcd.
//
// A flush object holds a small extent of every partition written in its
// flush, so the reader reads objects in chunks (8 MiB by default, or the
// whole object when it is small), once for every partition in them, and
// decodes the extents of the partitions being read as the chunk arrives.
// What it holds is bounded in bytes: index windows of shard logs
// (index_window.go), chunks as stored (chunk_cache.go), and decoded
// extents (extent.go, extent_cache.go), those of a chunk of a flush over
// many partitions decoded into one item (chunk_extents.go). A fetch plans its reads across
// its partitions before reading any (fetch.go), so a consumer of many
// partitions moves through objects in the order they were written, and
// reads ahead in the background what its partitions will need next.
//
// The package knows nothing of the Kafka protocol: the agent checks
// offsets against the watermarks, maps the errors here to Kafka error
// codes and encodes the responses.
package logread
