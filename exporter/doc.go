// Package exporter writes topics to Apache Iceberg tables: a topic with
// floe.iceberg.enabled=true gets a table whose rows are its committed
// records (read_committed: below the last stable offset, aborted
// transactions left out), one row per record, in Parquet files in the
// warehouse (by default the cluster's own bucket) and registered in an
// Iceberg catalog (SQL: SQLite or PostgreSQL; or REST).
//
// One exporter leads at a time (an etcd election, as the compactor's).
// Exports are exactly once: each table commit records in its snapshot's
// summary the offset every partition reached (floe.offsets), and the
// exporter resumes from the table's latest such snapshot, never from
// anything it wrote elsewhere. A commit is conditional on the snapshot it
// was built on (Iceberg's optimistic concurrency, with no retry), so an
// exporter that lost its leadership cannot append rows another has
// appended. The topic's export state in etcd repeats the last commit for
// reports and lag, written after it.
//
// Columns: a kafka struct (topic, partition, offset, timestamp,
// timestamp_type), key, headers and value, as binary; a topic whose values
// are JSON with a declared JSON Schema (floe.iceberg.value.format=json,
// floe.iceberg.value.schema), or Avro, Protobuf or JSON in the Confluent
// wire format with their schemas in a schema registry (values.go), gets
// the schema's fields as typed columns instead of value, and a record
// that does not match keeps its value and the reason in the _dead_letter
// column.
package exporter
