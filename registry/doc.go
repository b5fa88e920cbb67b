// Package registry is floe's schema registry: an http.Handler that speaks
// Confluent Schema Registry's REST API (its paths, JSON shapes, error
// codes and content type), so the serializers Kafka users already run
// (Confluent's for Java, confluent-kafka for Python, Go and .NET,
// franz-go's sr) register and fetch Avro, Protobuf and JSON Schema
// schemas from floe's agents unchanged.
//
// It owns the API and what schemas mean: Avro schemas are parsed and
// checked for compatibility with github.com/twmb/avro; Protobuf and JSON
// Schema schemas are only checked for being present (JSON: valid JSON),
// and any change of them is taken as compatible. State lives in etcd
// through the metadata package (metadata/schemas.go), so every agent
// serves the same registry and keeps nothing of its own.
//
// What is not served: modes other than READWRITE, contexts, exporters,
// data contracts (metadata and rule sets are accepted and not stored),
// and Protobuf and JSON Schema compatibility checks. docs/schema-registry.md
// says how to use it.
//
// registry imports metadata and nothing else of floe's; cmd/floe wires it
// to a listener, with the agent's authentication around it.
package registry
