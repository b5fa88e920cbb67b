// Package schemaregistry is a client of a Confluent-compatible schema
// registry, and the Confluent wire format of the record values whose
// schemas it holds. The exporter uses it to decode Avro, Protobuf and
// JSON Schema values into a table's columns. It imports nothing from
// floe.
//
// # Registry
//
// The client reads, over the registry's REST API:
//
//	GET /subjects/{subject}/versions/latest   a subject's latest schema
//	GET /subjects/{subject}/versions/{n}      a version (references)
//	GET /schemas/ids/{id}                     a schema by its ID
//
// each answering {"subject", "version", "id", "schema", "schemaType",
// "references"}; schemaType is AVRO (also when absent), PROTOBUF or JSON,
// and references are {"name", "subject", "version"}: the schema a name
// (an Avro type's full name, a .proto import path, a JSON Schema $ref)
// stands for. A registry's error answers are {"error_code", "message"}
// (40401 subject not found, 40402 version not found, 40403 schema not
// found); the client returns them as *Error, and those of a 404 match
// ErrNotFound.
//
// Schemas by ID, and versions by number, never change, so the client
// caches them (a bounded number); a subject's latest version is read
// anew at every call: callers read it once per use they make of it.
// Requests are bounded by the caller's context and the client's timeout,
// and a request that fails without an answer, or with 429 or a 5xx, is
// tried up to three times.
//
// # Wire format
//
// A value written by a Confluent serializer is
//
//	byte 0      magic byte, 0
//	bytes 1-4   the writer schema's ID, big-endian
//	Protobuf:   the message indexes: a zigzag varint count, then that
//	            many zigzag varint indexes, the path from the file's
//	            top-level messages to the value's message (first index:
//	            the top-level message; each next: a message nested in
//	            it); the count 0, one byte 0, means [0], the first
//	            top-level message
//	then        the Avro binary, Protobuf binary or JSON text
//
// ParseHeader and ParseMessageIndexes read it; AppendHeader and
// AppendMessageIndexes write it.
package schemaregistry
