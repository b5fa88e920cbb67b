package exporter

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/floe-io/floe/internal/valueschema"
	"github.com/floe-io/floe/metadata"
)

// Topic configs of the export (metadata/configs.go validates them).
const (
	cfgEnabled           = "floe.iceberg.enabled"
	cfgTable             = "floe.iceberg.table"
	cfgCommitInterval    = "floe.iceberg.commit.interval.ms"
	cfgPartitionBy       = "floe.iceberg.partition.by"
	cfgValueFormat       = "floe.iceberg.value.format"
	cfgValueSchema       = "floe.iceberg.value.schema"
	cfgValueSubject      = "floe.iceberg.value.subject"
	cfgSnapshotRetention = "floe.iceberg.snapshot.retention.ms"
)

// TopicSettings are a topic's export settings.
type TopicSettings struct {
	Enabled bool
	// Table is the table's identifier: namespace levels, then its name.
	Table          table.Identifier
	CommitInterval time.Duration
	PartitionBy    []valueschema.PartitionTerm
	// ValueFormat is binary, json, avro or protobuf.
	ValueFormat string
	// ValueSchema is the values' inline JSON schema; nil when they are
	// exported as bytes or decoded by a schema of the registry.
	ValueSchema *valueschema.Field
	// ValueSubject is the registry subject whose latest schema gives the
	// columns (avro, protobuf, and json without an inline schema).
	ValueSubject      string
	SnapshotRetention time.Duration
}

// Value formats.
const (
	formatBinary   = "binary"
	formatJSON     = "json"
	formatAvro     = "avro"
	formatProtobuf = "protobuf"
)

// usesRegistry reports whether the values are in the Confluent wire
// format, decoded by schemas of the schema registry.
func (s TopicSettings) usesRegistry() bool {
	return s.ValueFormat == formatAvro || s.ValueFormat == formatProtobuf || s.ValueFormat == formatJSON && s.ValueSchema == nil
}

// settingsOf reads a topic's export settings from its config overrides,
// with the configs' defaults.
func settingsOf(t metadata.Topic) (TopicSettings, error) {
	get := func(name string) string {
		if v, ok := t.Configs[name]; ok {
			return strings.TrimSpace(v)
		}
		def, _ := metadata.LookupTopicConfig(name)
		return def.Default
	}
	var s TopicSettings
	s.Enabled = strings.EqualFold(get(cfgEnabled), "true")
	if !s.Enabled {
		return s, nil
	}
	s.Table = strings.Split(metadata.IcebergTableName(t.Name, t.Configs), ".")
	if len(s.Table) < 2 {
		return s, fmt.Errorf("%s %q: want namespace.table", cfgTable, get(cfgTable))
	}
	ms, err := strconv.ParseInt(get(cfgCommitInterval), 10, 64)
	if err != nil {
		return s, fmt.Errorf("%s: %w", cfgCommitInterval, err)
	}
	s.CommitInterval = time.Duration(ms) * time.Millisecond
	if ms, err = strconv.ParseInt(get(cfgSnapshotRetention), 10, 64); err != nil {
		return s, fmt.Errorf("%s: %w", cfgSnapshotRetention, err)
	}
	s.SnapshotRetention = time.Duration(ms) * time.Millisecond
	if s.PartitionBy, err = valueschema.ParsePartitionBy(get(cfgPartitionBy)); err != nil {
		return s, fmt.Errorf("%s: %w", cfgPartitionBy, err)
	}
	s.ValueFormat = strings.ToLower(get(cfgValueFormat))
	switch s.ValueFormat {
	case formatBinary, formatAvro, formatProtobuf:
	case formatJSON:
		if text := get(cfgValueSchema); text != "" {
			if s.ValueSchema, err = valueschema.ParseJSONSchema([]byte(text)); err != nil {
				return s, fmt.Errorf("%s: %w", cfgValueSchema, err)
			}
		}
	default:
		return s, fmt.Errorf("%s %q: want binary, json, avro or protobuf", cfgValueFormat, s.ValueFormat)
	}
	if s.usesRegistry() {
		s.ValueSubject = metadata.IcebergValueSubject(t.Name, t.Configs)
	}
	return s, nil
}
