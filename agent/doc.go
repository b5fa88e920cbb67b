// Package agent is floe's stateless Kafka-protocol server.
//
// An agent speaks Kafka's wire protocol to unmodified clients, encoding and
// decoding every request and response with franz-go's kmsg. It keeps no
// state of its own: topics, offsets and groups live in etcd (package
// metadata) and records live in segment objects in the object store
// (package segments). Any agent serves any request; each partition still
// has one advertised leader (see metadata.Rank) so a client's traffic for a
// partition tends to land on one agent.
//
// Every Kafka API the agent serves has its own file named for its key
// (03_metadata.go, 19_create_topics.go, ...), which opens with the versions
// served and registers them; ApiVersions is derived from that registry.
// unsupported.go lists what is not implemented.
//
// The write path, from validated batches to segment objects committed in
// etcd, is package agent/internal/logwrite; Produce and the
// __consumer_offsets feed append through it, and errors.go maps its errors
// to Kafka codes. The read path, from index entries to record batches with
// their offsets, is package agent/internal/logread; Fetch and ListOffsets
// read through it, and 01_fetch.go keeps the protocol's part (watermarks,
// error codes, the long poll, response sizes).
//
// agent may import metadata, segments and its internal packages, never the
// reverse.
package agent
