package metadata_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/floe-io/floe/metadata"
)

const ordersSchema = `{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"at":{"type":"string","format":"date-time"}}}`

// The floe.iceberg configs take the values the exporter reads, alone and
// together; value.format and value.schema are checked as a pair.
func TestIcebergTopicConfigs(t *testing.T) {
	for _, configs := range []map[string]string{
		{},
		{"floe.iceberg.enabled": "true"},
		{"floe.iceberg.enabled": "TRUE", "floe.iceberg.value.format": "binary"},
		{"floe.iceberg.enabled": "true", "floe.iceberg.value.format": "json", "floe.iceberg.value.schema": ordersSchema},
		{"floe.iceberg.value.format": " json ", "floe.iceberg.value.schema": "\n" + ordersSchema + "\n"},
		{"floe.iceberg.table": "analytics.orders", "floe.iceberg.commit.interval.ms": "1000", "floe.iceberg.snapshot.retention.ms": "60000"},
		{"floe.iceberg.table": "Lake_1.eu.orders_v2"},
		{"floe.iceberg.table": "a." + strings.Repeat("t", 255)},
		{"floe.iceberg.table": ""},
		{"floe.iceberg.partition.by": "day(timestamp), bucket(16, id), partition"},
		{"floe.iceberg.partition.by": ""},
		{"floe.iceberg.value.schema": "", "floe.iceberg.value.format": "binary"},
		{"floe.iceberg.value.format": "avro"},
		{"floe.iceberg.value.format": "protobuf", "floe.iceberg.value.subject": "orders-proto-value"},
		{"floe.iceberg.value.format": "json"},
		{"floe.iceberg.value.format": "json", "floe.iceberg.value.subject": "shared.Order"},
		{"floe.iceberg.value.format": "avro", "floe.iceberg.value.subject": ""},
	} {
		if err := metadata.ValidateTopicConfigs(configs); err != nil {
			t.Errorf("%v: %v", configs, err)
		}
	}
	for _, tc := range []struct {
		configs map[string]string
		want    string
	}{
		{map[string]string{"floe.iceberg.value.format": "avro", "floe.iceberg.value.schema": ordersSchema}, "floe.iceberg.value.schema is set but floe.iceberg.value.format=avro takes its schema from the schema registry"},
		{map[string]string{"floe.iceberg.value.format": "protobuf", "floe.iceberg.value.schema": ordersSchema}, "floe.iceberg.value.format=protobuf takes its schema from the schema registry"},
		{map[string]string{"floe.iceberg.value.subject": "orders-value"}, "floe.iceberg.value.subject is set but floe.iceberg.value.format is binary"},
		{map[string]string{"floe.iceberg.value.format": "json", "floe.iceberg.value.schema": ordersSchema, "floe.iceberg.value.subject": "orders-value"}, "floe.iceberg.value.subject is set but floe.iceberg.value.schema gives the values' JSON Schema inline"},
		{map[string]string{"floe.iceberg.value.subject": "a\x01b", "floe.iceberg.value.format": "avro"}, "a subject must be UTF-8 without control characters"},
		{map[string]string{"floe.iceberg.value.subject": strings.Repeat("s", 256), "floe.iceberg.value.format": "avro"}, "256 bytes; a subject is at most 255"},
		{map[string]string{"floe.iceberg.value.format": "thrift"}, `floe.iceberg.value.format="thrift": must be one of binary, json, avro, protobuf`},
		{map[string]string{"floe.iceberg.value.schema": ordersSchema}, "floe.iceberg.value.schema is set but floe.iceberg.value.format is binary"},
		{map[string]string{"floe.iceberg.value.schema": ordersSchema, "floe.iceberg.value.format": "binary"}, "floe.iceberg.value.schema is set but floe.iceberg.value.format is binary"},
		{map[string]string{"floe.iceberg.value.format": "json", "floe.iceberg.value.schema": `{"type":"object","properties":{"user":{"type":"object","properties":{"tags":{"oneOf":[]}}}}}`},
			`floe.iceberg.value.schema="{\"type\":\"object\",\"properties\":{\"user\":{\"type\":\"object\",\"properti"…: properties.user.properties.tags: "oneOf" is not supported`},
		{map[string]string{"floe.iceberg.partition.by": "bucket(0, id)"}, `floe.iceberg.partition.by="bucket(0, id)": bucket(0, ...): the bucket count must be at least 1`},
		{map[string]string{"floe.iceberg.table": "orders"}, `floe.iceberg.table="orders": must be namespace.table`},
		{map[string]string{"floe.iceberg.commit.interval.ms": "500"}, `floe.iceberg.commit.interval.ms="500": must be 1000 or more`},
		{map[string]string{"floe.iceberg.snapshot.retention.ms": "1000"}, `must be 60000 or more`},
		{map[string]string{"floe.iceberg.value.format": "json", "floe.iceberg.value.schema": strings.Repeat(" ", 10) + `{"x":"` + strings.Repeat("é", 70<<10) + `"}`},
			`floe.iceberg.value.schema="          {\"x\":\"éééééééééééééééééééééééé"…: 143368 bytes; a value schema is at most 131072`},
	} {
		err := metadata.ValidateTopicConfigs(tc.configs)
		if !errors.Is(err, metadata.ErrInvalidConfig) {
			t.Errorf("%.80v: %v, want ErrInvalidConfig", tc.configs, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") || len(msg) > 400 {
			t.Errorf("%.80v:\n got %q\nwant one short line with %q", tc.configs, msg, tc.want)
		}
	}
}

// A topic spec is checked the same way when the topic is created.
func TestIcebergTopicSpec(t *testing.T) {
	spec := metadata.TopicSpec{Name: "orders", Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{
		"floe.iceberg.enabled": "true", "floe.iceberg.value.format": "json", "floe.iceberg.value.schema": ordersSchema,
	}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	spec.Configs["floe.iceberg.value.format"] = "avro"
	if err := spec.Validate(); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Errorf("avro with an inline schema: %v", err)
	}
}

// Without overrides, DescribeConfigs reports the floe.iceberg configs at
// their defaults, which no broker setting replaces.
func TestIcebergConfigDefaults(t *testing.T) {
	want := map[string]string{
		"floe.iceberg.enabled":               "false",
		"floe.iceberg.table":                 "",
		"floe.iceberg.commit.interval.ms":    "60000",
		"floe.iceberg.partition.by":          "",
		"floe.iceberg.value.format":          "binary",
		"floe.iceberg.value.schema":          "",
		"floe.iceberg.value.subject":         "",
		"floe.iceberg.snapshot.retention.ms": "604800000",
	}
	broker := metadata.BrokerConfig{"": "x", "log.retention.ms": "1000"}
	for name, value := range want {
		def, ok := metadata.LookupTopicConfig(name)
		if !ok {
			t.Errorf("%s is not a topic config", name)
			continue
		}
		if def.BrokerName != "" {
			t.Errorf("%s has a broker synonym %q; Kafka has none", name, def.BrokerName)
		}
		if rc := broker.Resolve(nil, def); rc.Value != value || rc.Source != metadata.SourceDefault {
			t.Errorf("%s: %q from %d, want %q from the default", name, rc.Value, rc.Source, value)
		}
	}
	n := 0
	for _, def := range metadata.TopicConfigDefs {
		if strings.HasPrefix(def.Name, "floe.") {
			n++
		}
	}
	if n != len(want) {
		t.Errorf("%d floe.* configs, want %d", n, len(want))
	}
}

func TestIcebergTableName(t *testing.T) {
	for _, tc := range []struct {
		topic     string
		overrides map[string]string
		want      string
	}{
		{"orders", nil, "floe.orders"},
		{"orders.eu-1", nil, "floe.orders_eu_1"},
		{"a_b", nil, "floe.a_b"},
		{"a.b", nil, "floe.a_b"},
		{"Orders-V2", map[string]string{"retention.ms": "1"}, "floe.Orders_V2"},
		{"orders", map[string]string{"floe.iceberg.table": "lake.sales.orders"}, "lake.sales.orders"},
		{"orders", map[string]string{"floe.iceberg.table": " lake.orders "}, "lake.orders"},
		{"orders", map[string]string{"floe.iceberg.table": ""}, "floe.orders"},
	} {
		got := metadata.IcebergTableName(tc.topic, tc.overrides)
		if got != tc.want {
			t.Errorf("%s %v: %q, want %q", tc.topic, tc.overrides, got, tc.want)
		}
		// The default name is always a valid floe.iceberg.table.
		if err := metadata.ValidateTopicConfig("floe.iceberg.table", got); err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
	// Every topic name floe accepts gives a valid table name.
	long := strings.Repeat("x.-_", 62) + "y"
	if err := metadata.ValidateTopicName(long); err != nil {
		t.Fatal(err)
	}
	if err := metadata.ValidateTopicConfig("floe.iceberg.table", metadata.IcebergTableName(long, nil)); err != nil {
		t.Errorf("%s: %v", long, err)
	}
}
