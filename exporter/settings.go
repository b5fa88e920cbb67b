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
	cfgSnapshotRetention = "floe.iceberg.snapshot.retention.ms"
)

// TopicSettings are a topic's export settings.
type TopicSettings struct {
	Enabled bool
	// Table is the table's identifier: namespace levels, then its name.
	Table          table.Identifier
	CommitInterval time.Duration
	PartitionBy    []valueschema.PartitionTerm
	// ValueSchema is the values' JSON schema; nil when they are exported
	// as bytes.
	ValueSchema       *valueschema.Field
	SnapshotRetention time.Duration
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
	if strings.EqualFold(get(cfgValueFormat), "json") {
		if s.ValueSchema, err = valueschema.ParseJSONSchema([]byte(get(cfgValueSchema))); err != nil {
			return s, fmt.Errorf("%s: %w", cfgValueSchema, err)
		}
	}
	return s, nil
}
