// Package valueschema owns the shape of a topic's record values when they
// are exported to a table: it parses the JSON Schema a topic declares
// (floe.iceberg.value.schema), decodes JSON record values against it, and
// parses the table's partitioning (floe.iceberg.partition.by). It maps
// Avro schemas (avro.go) and Protobuf messages (protobuf.go) to the same
// tree of Field, and decodes their binary values into the same Go values
// as Decode, read as another version of the schema. It knows nothing of
// Iceberg, Arrow, Kafka or schema registries and imports nothing from
// floe; the exporter maps a *Field to a table schema and the decoders'
// results to rows.
//
// # Schemas
//
// ParseJSONSchema reads a subset of JSON Schema (draft 2020-12, and the
// drafts back to 07 where they agree) into a tree of Field. The root must
// be "type": "object". Properties keep the order the document lists them
// in, which becomes the order of the table's columns.
//
// Read:
//   - type: boolean, integer (Long, int64), number (Double), string,
//     object, array; or [X, "null"] (either order) for a Nullable field
//     ([X] alone is X).
//   - properties: an object's fields. An object must have at least one.
//   - required: names among the properties; they are Required.
//   - items: an array's one item schema, Elem.
//   - format: "date-time" (Timestamp) and "date" (Date) on strings; any
//     other format leaves a String.
//   - description: Doc.
//   - additionalProperties (or unevaluatedProperties): true or false; false
//     makes the object Closed.
//
// Ignored, since they do not change a value's shape: annotations
// ($schema, $id, $comment, title, examples, default, deprecated, readOnly,
// writeOnly, $defs, ...), unknown keywords, and value assertions (enum,
// const, minimum, maximum, multipleOf, minLength, maxLength, pattern,
// minItems, maxItems, uniqueItems, dependentRequired, ...). Decode checks
// shape and types, not these: a topic that needs them validates values
// before producing them.
//
// Refused, naming the JSON path of the schema at fault (for example
// properties.user.properties.tags: "oneOf" is not supported): keywords
// that reference or combine schemas or apply a subschema other than
// properties and items ($ref, oneOf, anyOf, allOf, not, if/then/else,
// dependentSchemas, patternProperties, propertyNames, prefixItems,
// additionalItems, contains, ...), additionalProperties as a schema, an
// array of items schemas (a tuple), a boolean schema, a type list other
// than [X, "null"], "type": "null" alone, a missing type, keywords of the
// wrong type (properties on a string), an object without properties, an
// array without items, a required name that is not a property, and
// OpenAPI's "nullable".
//
// Limits: MaxDepth levels below the root, MaxFields fields in all, names
// non-empty, at most MaxNameBytes bytes, without control characters, and
// unique among their siblings (case-sensitive: "ID" and "id" are two
// fields). Malformed JSON and every limit give a *SchemaError, never a
// panic.
//
// # Values
//
// Decode checks a value against the schema as it parses it, in one pass
// that recurses only as deep as the schema and skips unlisted properties
// of open objects with an explicit stack. A field that is not required
// may be absent or null (JSON Schema would refuse null without "null" in
// its type, but producers commonly write it for "absent"); a required
// field must be present, and non-null unless Nullable. Duplicate
// properties are refused rather than resolved one way or the other.
// Integers must be exact and fit int64 (1e3 and 2.0 are integers, 1.5 is
// not). Strings must be valid UTF-8. Date-times follow RFC 3339 (T or t,
// Z, z or an offset; a fraction is truncated to microseconds; a leap
// second becomes 23:59:59.999999 of its day); dates are YYYY-MM-DD.
//
// # Partitioning
//
// ParsePartitionBy reads the terms of a table's partitioning; the
// exporter resolves their columns (the record's timestamp, partition and
// offset, and the schema's top-level fields).
package valueschema
