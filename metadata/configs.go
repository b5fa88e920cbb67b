package metadata

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/floe-io/floe/internal/valueschema"
)

// ConfigType is Kafka's DescribeConfigs config type.
type ConfigType int8

// Kafka's config type codes.
const (
	ConfigBoolean ConfigType = 1
	ConfigString  ConfigType = 2
	ConfigInt     ConfigType = 3
	ConfigLong    ConfigType = 5
	ConfigDouble  ConfigType = 6
	ConfigList    ConfigType = 7
)

// TopicConfigDef describes one topic config: every topic-level config
// Kafka defines is one, whether or not floe acts on it.
type TopicConfigDef struct {
	Name string // topic-level name, e.g. retention.ms
	// BrokerName is the broker default it falls back to, e.g.
	// log.retention.ms; empty where Kafka has none (remote.storage.enable,
	// the replication throttles).
	BrokerName string
	Type       ConfigType // Kafka config type
	Default    string     // Kafka's default when no broker default is set
	// Doc says what the config means and what floe does with it.
	Doc      string
	validate func(string) error
}

// noEffect ends the Doc of a config floe accepts and reports but does not
// act on, with the reason.
func noEffect(what, why string) string {
	return what + " Accepted and reported; no effect in floe: " + why + "."
}

const (
	maxInt  = math.MaxInt32
	maxLong = math.MaxInt64
)

// TopicConfigDefs lists every topic config floe accepts, in name order:
// the topic-level configs of Kafka 3.x and 4.x, with Kafka's types,
// defaults and validity rules. Configs Kafka 4.0 removed
// (message.downconversion.enable, message.format.version,
// message.timestamp.difference.max.ms) are still accepted because tools
// still send them.
var TopicConfigDefs = []TopicConfigDef{
	{
		Name: "cleanup.policy", BrokerName: "log.cleanup.policy", Type: ConfigList, Default: "delete",
		Doc:      "delete: retention.ms and retention.bytes remove old data. compact: floe keeps every record (key-based compaction is not performed) and retention does not apply. compact,delete: retention applies.",
		validate: validateCleanupPolicy,
	},
	{
		Name: "compression.gzip.level", BrokerName: "compression.gzip.level", Type: ConfigInt, Default: "-1",
		Doc:      noEffect("The gzip level for compression.type=gzip.", "floe stores batches as the producer compressed them"),
		validate: validateGzipLevel,
	},
	{
		Name: "compression.lz4.level", BrokerName: "compression.lz4.level", Type: ConfigInt, Default: "9",
		Doc:      noEffect("The lz4 level for compression.type=lz4.", "floe stores batches as the producer compressed them"),
		validate: intRange(1, 17),
	},
	{
		Name: "compression.type", BrokerName: "compression.type", Type: ConfigString, Default: "producer",
		Doc:      noEffect("The codec a broker recompresses batches to: producer keeps the producer's; uncompressed, gzip, snappy, lz4 or zstd recompress.", "floe stores batches as the producer compressed them, as with producer (recompression is not implemented)"),
		validate: validateOneOf("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
	},
	{
		Name: "compression.zstd.level", BrokerName: "compression.zstd.level", Type: ConfigInt, Default: "3",
		Doc:      noEffect("The zstd level for compression.type=zstd.", "floe stores batches as the producer compressed them"),
		validate: intRange(-131072, 22),
	},
	{
		Name: "delete.retention.ms", BrokerName: "log.cleaner.delete.retention.ms", Type: ConfigLong, Default: "86400000",
		Doc:      noEffect("How long compaction keeps tombstones.", "floe does not compact by key yet"),
		validate: longRange(0, maxLong),
	},
	{
		Name: "file.delete.delay.ms", BrokerName: "log.segment.delete.delay.ms", Type: ConfigLong, Default: "60000",
		Doc:      noEffect("How long a deleted segment file is kept.", "floe has no local segments; the compactor deletes objects after --gc-grace"),
		validate: longRange(0, maxLong),
	},
	{
		Name: "floe.iceberg.commit.interval.ms", Type: ConfigLong, Default: "60000",
		Doc:      "How often, in milliseconds, the exporter commits the records it has written to the topic's Iceberg table. At least 1000.",
		validate: longRange(1000, maxLong),
	},
	{
		Name: "floe.iceberg.enabled", Type: ConfigBoolean, Default: "false",
		Doc:      "floe's, not Kafka's, like every floe.iceberg config: true exports the topic's committed records to an Iceberg table (floe.iceberg.table), written by the exporter.",
		validate: validateBoolean,
	},
	{
		Name: "floe.iceberg.partition.by", Type: ConfigString, Default: "",
		Doc:      "How the topic's Iceberg table is partitioned, as comma-separated terms, each a column (identity) or year(col), month(col), day(col), hour(col), bucket(N, col) or truncate(W, col); a column is the record's timestamp, partition or offset, or a top-level field of the value schema (a dotted path for a nested one). Empty: not partitioned.",
		validate: validatePartitionBy,
	},
	{
		Name: "floe.iceberg.snapshot.retention.ms", Type: ConfigLong, Default: "604800000",
		Doc:      "How long, in milliseconds, the topic's Iceberg table keeps an old snapshot (and so how far back it can be read as of a time), whatever the topic's retention.ms. At least 60000.",
		validate: longRange(60000, maxLong),
	},
	{
		Name: "floe.iceberg.table", Type: ConfigString, Default: "",
		Doc:      "The Iceberg table the topic is exported to, as namespace.table (more dotted parts nest namespaces), each part letters, digits and _. Empty: floe.<topic>, with the topic name's characters other than letters, digits and _ replaced by _.",
		validate: validateIcebergTable,
	},
	{
		Name: "floe.iceberg.value.format", Type: ConfigString, Default: "binary",
		Doc: "How record values are exported to the Iceberg table: binary exports each value as produced, as bytes; json decodes each value, a JSON object, into columns by floe.iceberg.value.schema, or, without one, values in the Confluent wire format by the JSON Schema of the schema registry's subject floe.iceberg.value.subject; " +
			"avro and protobuf decode values in the Confluent wire format (as Confluent's serializers write them) into columns by the subject's latest Avro or Protobuf schema, read from the exporter's schema registry (--schema-registry-url). A value that does not decode is kept in the _dead_letter column.",
		validate: validateOneOf("binary", "json", "avro", "protobuf"),
	},
	{
		Name: "floe.iceberg.value.schema", Type: ConfigString, Default: "",
		Doc:      "With floe.iceberg.value.format=json, the JSON Schema of the topic's record values, inline: an object whose properties become the table's columns in the order written (type, properties, required, items, format date-time and date, additionalProperties; references and combinators such as $ref and oneOf are refused). At most 131072 bytes. Empty with json: the schema registry's subject gives the schema.",
		validate: validateValueSchema,
	},
	{
		Name: "floe.iceberg.value.subject", Type: ConfigString, Default: "",
		Doc:      "With floe.iceberg.value.format=avro or protobuf (or json without floe.iceberg.value.schema), the schema registry subject whose latest schema gives the table's columns. Empty: <topic>-value, the subject Confluent's serializers register a topic's value schemas under (TopicNameStrategy).",
		validate: validateSubject,
	},
	{
		Name: "flush.messages", BrokerName: "log.flush.interval.messages", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      noEffect("Records between forced fsyncs of the log.", "floe acknowledges only data already in the object store"),
		validate: longRange(1, maxLong),
	},
	{
		Name: "flush.ms", BrokerName: "log.flush.interval.ms", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      noEffect("Milliseconds between forced fsyncs of the log.", "floe acknowledges only data already in the object store"),
		validate: longRange(0, maxLong),
	},
	{
		Name: "follower.replication.throttled.replicas", Type: ConfigList, Default: "",
		Doc:      noEffect("Replicas whose follower fetches are throttled: * or partition:broker pairs.", "agents do not replicate"),
		validate: validateThrottledReplicas,
	},
	{
		Name: "index.interval.bytes", BrokerName: "log.index.interval.bytes", Type: ConfigInt, Default: "4096",
		Doc:      noEffect("Bytes of log between offset index entries.", "floe has no local segments; every flush is indexed in etcd"),
		validate: intRange(0, maxInt),
	},
	{
		Name: "leader.replication.throttled.replicas", Type: ConfigList, Default: "",
		Doc:      noEffect("Replicas whose leader-side replication is throttled: * or partition:broker pairs.", "agents do not replicate"),
		validate: validateThrottledReplicas,
	},
	{
		Name: "local.retention.bytes", BrokerName: "log.local.retention.bytes", Type: ConfigLong, Default: "-2",
		Doc:      noEffect("With tiered storage, the bytes a partition keeps on local disk; -2 means retention.bytes.", "floe has no local segments"),
		validate: longRange(-2, maxLong),
	},
	{
		Name: "local.retention.ms", BrokerName: "log.local.retention.ms", Type: ConfigLong, Default: "-2",
		Doc:      noEffect("With tiered storage, how long data stays on local disk; -2 means retention.ms.", "floe has no local segments"),
		validate: longRange(-2, maxLong),
	},
	{
		Name: "max.compaction.lag.ms", BrokerName: "log.cleaner.max.compaction.lag.ms", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      noEffect("The longest a record may wait before compaction.", "floe does not compact by key yet"),
		validate: longRange(1, maxLong),
	},
	{
		Name: "max.message.bytes", BrokerName: "message.max.bytes", Type: ConfigInt, Default: "1048588",
		Doc:      "The largest record batch size accepted, after compression. Larger batches get MESSAGE_TOO_LARGE.",
		validate: intRange(0, maxInt),
	},
	{
		Name: "message.downconversion.enable", BrokerName: "log.message.downconversion.enable", Type: ConfigBoolean, Default: "true",
		Doc:      noEffect("Whether fetches by old clients are down-converted to older message formats (removed in Kafka 4.0).", "floe serves RecordBatch v2 only"),
		validate: validateBoolean,
	},
	{
		Name: "message.format.version", BrokerName: "log.message.format.version", Type: ConfigString, Default: "3.0-IV1",
		Doc:      noEffect("The message format version the broker writes (removed in Kafka 4.0).", "floe stores RecordBatch v2 only"),
		validate: validateKafkaVersion,
	},
	{
		Name: "message.timestamp.after.max.ms", BrokerName: "log.message.timestamp.after.max.ms", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      "With CreateTime, how far ahead of the agent's clock a record's timestamp may be; a batch holding a later one gets INVALID_TIMESTAMP.",
		validate: longRange(0, maxLong),
	},
	{
		Name: "message.timestamp.before.max.ms", BrokerName: "log.message.timestamp.before.max.ms", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      "With CreateTime, how far behind the agent's clock a record's timestamp may be; a batch holding an older one gets INVALID_TIMESTAMP.",
		validate: longRange(0, maxLong),
	},
	{
		Name: "message.timestamp.difference.max.ms", BrokerName: "log.message.timestamp.difference.max.ms", Type: ConfigLong, Default: "9223372036854775807",
		Doc:      "Deprecated (removed in Kafka 4.0): the bound before.max.ms and after.max.ms take while they are at their defaults.",
		validate: longRange(0, maxLong),
	},
	{
		Name: "message.timestamp.type", BrokerName: "log.message.timestamp.type", Type: ConfigString, Default: "CreateTime",
		Doc:      "CreateTime keeps the producer's timestamps; LogAppendTime replaces them with the time the agent accepted the batch.",
		validate: validateOneOf("CreateTime", "LogAppendTime"),
	},
	{
		Name: "min.cleanable.dirty.ratio", BrokerName: "log.cleaner.min.cleanable.ratio", Type: ConfigDouble, Default: "0.5",
		Doc:      noEffect("The share of uncompacted log that triggers compaction.", "floe does not compact by key yet"),
		validate: validateRatio,
	},
	{
		Name: "min.compaction.lag.ms", BrokerName: "log.cleaner.min.compaction.lag.ms", Type: ConfigLong, Default: "0",
		Doc:      noEffect("The shortest a record stays uncompacted.", "floe does not compact by key yet"),
		validate: longRange(0, maxLong),
	},
	{
		Name: "min.insync.replicas", BrokerName: "min.insync.replicas", Type: ConfigInt, Default: "1",
		Doc:      noEffect("Replicas that must have a write before acks=all succeeds.", "floe acknowledges only after the object store and etcd hold the data, so every acknowledged write is already replicated by them"),
		validate: intRange(1, maxInt),
	},
	{
		Name: "preallocate", BrokerName: "log.preallocate", Type: ConfigBoolean, Default: "false",
		Doc:      noEffect("Whether segment files are allocated in full when created.", "floe has no local segments"),
		validate: validateBoolean,
	},
	{
		Name: "remote.log.copy.disable", Type: ConfigBoolean, Default: "false",
		Doc:      noEffect("With tiered storage, stops copying segments to remote storage.", "all of floe's data is in the object store"),
		validate: validateBoolean,
	},
	{
		Name: "remote.log.delete.on.disable", Type: ConfigBoolean, Default: "false",
		Doc:      noEffect("With tiered storage, deletes remote data when remote storage is turned off.", "all of floe's data is in the object store"),
		validate: validateBoolean,
	},
	{
		Name: "remote.storage.enable", Type: ConfigBoolean, Default: "false",
		Doc:      noEffect("Whether the topic uses tiered storage.", "all of floe's data is in the object store"),
		validate: validateBoolean,
	},
	{
		Name: "retention.bytes", BrokerName: "log.retention.bytes", Type: ConfigLong, Default: "-1",
		Doc:      "The most bytes a partition keeps before its oldest data is removed; a negative value means no limit.",
		validate: longRange(math.MinInt64, maxLong),
	},
	{
		Name: "retention.ms", BrokerName: "log.retention.ms", Type: ConfigLong, Default: "604800000",
		Doc:      "How long data is kept, by its newest timestamp, before it is removed; -1 keeps it forever.",
		validate: longRange(-1, maxLong),
	},
	{
		Name: "segment.bytes", BrokerName: "log.segment.bytes", Type: ConfigInt, Default: "1073741824",
		Doc:      noEffect("The size at which a segment file is rolled.", "floe sizes its segment objects cluster-wide (--segment-target-bytes, --compaction-target-bytes)"),
		validate: intRange(14, maxInt),
	},
	{
		Name: "segment.index.bytes", BrokerName: "log.index.size.max.bytes", Type: ConfigInt, Default: "10485760",
		Doc:      noEffect("The size of a segment's offset index file.", "floe has no local segments; every flush is indexed in etcd"),
		validate: intRange(4, maxInt),
	},
	{
		Name: "segment.jitter.ms", BrokerName: "log.roll.jitter.ms", Type: ConfigLong, Default: "0",
		Doc:      noEffect("Random jitter subtracted from segment.ms.", "floe sizes its segment objects cluster-wide (--flush-interval, --segment-target-bytes)"),
		validate: longRange(0, maxLong),
	},
	{
		Name: "segment.ms", BrokerName: "log.roll.ms", Type: ConfigLong, Default: "604800000",
		Doc:      noEffect("The age at which a segment file is rolled.", "floe sizes its segment objects cluster-wide (--flush-interval, --segment-target-bytes)"),
		validate: longRange(1, maxLong),
	},
	{
		Name: "unclean.leader.election.enable", BrokerName: "unclean.leader.election.enable", Type: ConfigBoolean, Default: "false",
		Doc:      noEffect("Whether a replica out of sync may become leader, losing data.", "every agent reads the same committed log, so a new leader loses nothing"),
		validate: validateBoolean,
	},
}

// LookupTopicConfig finds a topic config by name.
func LookupTopicConfig(name string) (TopicConfigDef, bool) {
	i, ok := slices.BinarySearchFunc(TopicConfigDefs, name, func(d TopicConfigDef, n string) int { return strings.Compare(d.Name, n) })
	if !ok {
		return TopicConfigDef{}, false
	}
	return TopicConfigDefs[i], true
}

// ValidateTopicConfig checks one topic config; the error wraps
// ErrInvalidConfig and says why.
func ValidateTopicConfig(name, value string) error {
	def, ok := LookupTopicConfig(name)
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if err := def.validate(value); err != nil {
		return fmt.Errorf("%w: %s=%s: %v", ErrInvalidConfig, name, quoteValue(value), err)
	}
	return nil
}

// quoteValue quotes a config value for a message, shortened to about 64
// bytes: a value schema can be long.
func quoteValue(v string) string {
	const max = 64
	if len(v) <= max {
		return strconv.Quote(v)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return strconv.Quote(v[:cut]) + "…"
}

// ValidateTopicConfigs checks a set of topic config overrides, each alone
// and, as Kafka does, min.compaction.lag.ms against max.compaction.lag.ms
// (with Kafka's defaults for the one not set); and
// floe.iceberg.value.format with floe.iceberg.value.schema and
// floe.iceberg.value.subject: binary takes neither, avro and protobuf no
// inline schema, json one of the two (neither: the default subject).
func ValidateTopicConfigs(configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		if err := ValidateTopicConfig(name, configs[name]); err != nil {
			return err
		}
	}
	lag := func(name string) int64 {
		v, ok := configs[name]
		if !ok {
			def, _ := LookupTopicConfig(name)
			v = def.Default
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		return n
	}
	if lo, hi := lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms"); lo > hi {
		return fmt.Errorf("%w: min.compaction.lag.ms (%d) must not exceed max.compaction.lag.ms (%d)", ErrInvalidConfig, lo, hi)
	}
	format := strings.TrimSpace(configs["floe.iceberg.value.format"])
	schema, subject := strings.TrimSpace(configs["floe.iceberg.value.schema"]), strings.TrimSpace(configs["floe.iceberg.value.subject"])
	switch {
	case (format == "" || format == "binary") && schema != "":
		return fmt.Errorf("%w: floe.iceberg.value.schema is set but floe.iceberg.value.format is binary, which exports values undecoded; set floe.iceberg.value.format=json too (both in one request)", ErrInvalidConfig)
	case (format == "avro" || format == "protobuf") && schema != "":
		return fmt.Errorf("%w: floe.iceberg.value.schema is set but floe.iceberg.value.format=%s takes its schema from the schema registry (subject floe.iceberg.value.subject, by default <topic>-value); remove floe.iceberg.value.schema", ErrInvalidConfig, format)
	case (format == "" || format == "binary") && subject != "":
		return fmt.Errorf("%w: floe.iceberg.value.subject is set but floe.iceberg.value.format is binary, which exports values undecoded; set floe.iceberg.value.format to avro, protobuf or json too (both in one request)", ErrInvalidConfig)
	case format == "json" && schema != "" && subject != "":
		return fmt.Errorf("%w: floe.iceberg.value.subject is set but floe.iceberg.value.schema gives the values' JSON Schema inline; set one of them", ErrInvalidConfig)
	}
	return nil
}

// IcebergValueSubject is the schema registry subject whose schema
// decodes a topic's values: its floe.iceberg.value.subject override, else
// <topic>-value (Confluent's TopicNameStrategy).
func IcebergValueSubject(topic string, overrides map[string]string) string {
	if s := strings.TrimSpace(overrides["floe.iceberg.value.subject"]); s != "" {
		return s
	}
	return topic + "-value"
}

// maxSubjectBytes is the longest floe.iceberg.value.subject.
const maxSubjectBytes = 255

func validateSubject(v string) error {
	v = strings.TrimSpace(v)
	if len(v) > maxSubjectBytes {
		return fmt.Errorf("%d bytes; a subject is at most %d", len(v), maxSubjectBytes)
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("a subject must be UTF-8 without control characters")
	}
	return nil
}

// IcebergTableName is the Iceberg table a topic is exported to: its
// floe.iceberg.table override, else floe.<topic> with every character of
// the topic name other than letters, digits and _ replaced by _ (topic
// orders.eu-1: table floe.orders_eu_1). Two topics can have the same
// default (a.b and a_b: floe.a_b).
func IcebergTableName(topic string, overrides map[string]string) string {
	if t := strings.TrimSpace(overrides["floe.iceberg.table"]); t != "" {
		return t
	}
	b := []byte(topic)
	for i, c := range b {
		if !isTableNameByte(c) {
			b[i] = '_'
		}
	}
	return "floe." + string(b)
}

func isTableNameByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// maxTableNamePart is the longest part of floe.iceberg.table.
const maxTableNamePart = 255

// validateIcebergTable accepts namespace.table, with more dotted parts for
// nested namespaces, or empty (the default name).
func validateIcebergTable(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ".")
	bad := len(parts) < 2
	for _, p := range parts {
		bad = bad || p == "" || len(p) > maxTableNamePart || strings.IndexFunc(p, func(r rune) bool { return r >= utf8.RuneSelf || !isTableNameByte(byte(r)) }) >= 0
	}
	if bad {
		return fmt.Errorf("must be namespace.table (more dotted parts nest namespaces), each part letters, digits and _, at most %d bytes", maxTableNamePart)
	}
	return nil
}

func validatePartitionBy(v string) error {
	_, err := valueschema.ParsePartitionBy(v)
	return err
}

// maxValueSchemaBytes bounds floe.iceberg.value.schema, which is stored
// in the topic's etcd value and held by every agent's view.
const maxValueSchemaBytes = 128 << 10

func validateValueSchema(v string) error {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return nil
	case len(v) > maxValueSchemaBytes:
		return fmt.Errorf("%d bytes; a value schema is at most %d", len(v), maxValueSchemaBytes)
	}
	_, err := valueschema.ParseJSONSchema([]byte(v))
	return err
}

// ConfigSource says where an effective config value came from, with
// Kafka's DescribeConfigs source codes.
type ConfigSource int8

// Kafka's config source codes.
const (
	SourceTopicOverride ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceBrokerStatic  ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefault       ConfigSource = 5 // DEFAULT_CONFIG
	SourceGroup         ConfigSource = 8 // GROUP_CONFIG
)

// BrokerConfig holds broker-level settings by their Kafka broker config
// names (log.retention.ms, message.max.bytes, num.partitions, ...), as set
// by flags. Topic configs fall back to these.
type BrokerConfig map[string]string

// ResolvedConfig is one effective config value and where it came from.
type ResolvedConfig struct {
	Def    TopicConfigDef
	Value  string
	Source ConfigSource
}

// Resolve returns the effective value of a topic config: the topic's
// override, else the broker setting, else Kafka's default.
func (b BrokerConfig) Resolve(overrides map[string]string, def TopicConfigDef) ResolvedConfig {
	if v, ok := overrides[def.Name]; ok {
		return ResolvedConfig{Def: def, Value: v, Source: SourceTopicOverride}
	}
	if v, ok := b[def.BrokerName]; ok && def.BrokerName != "" && v != def.Default {
		return ResolvedConfig{Def: def, Value: v, Source: SourceBrokerStatic}
	}
	return ResolvedConfig{Def: def, Value: def.Default, Source: SourceDefault}
}

// TopicSettings are a topic's effective settings, parsed.
type TopicSettings struct {
	RetentionMs     int64 // -1: forever
	RetentionBytes  int64 // -1: no limit
	MaxMessageBytes int32
	LogAppendTime   bool
	// Compact is true when cleanup.policy includes compact; without delete
	// as well, retention does not apply.
	Compact bool
	Delete  bool
	// The cleaner's settings for compacted topics: how long tombstones
	// stay once cleaned (delete.retention.ms), how old records must be
	// before they may be cleaned and by when they must have been
	// (min. and max.compaction.lag.ms), and the dirty share at which a
	// partition is worth cleaning (min.cleanable.dirty.ratio).
	DeleteRetentionMs      int64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	MinCleanableDirtyRatio float64
	// TimestampBeforeMaxMs and TimestampAfterMaxMs bound a CreateTime
	// record's timestamp to [now-before, now+after] when it is produced
	// (math.MaxInt64: no bound). As in Kafka, each is
	// message.timestamp.difference.max.ms while it is at its default.
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
}

// Settings resolves and parses a topic's effective settings. Values were
// validated when stored; a value that no longer parses falls back to
// Kafka's default.
func (b BrokerConfig) Settings(overrides map[string]string) TopicSettings {
	get := func(name string) string {
		def, _ := LookupTopicConfig(name)
		return b.Resolve(overrides, def).Value
	}
	long := func(name string) int64 {
		v, err := strconv.ParseInt(get(name), 10, 64)
		if err != nil {
			def, _ := LookupTopicConfig(name)
			v, _ = strconv.ParseInt(def.Default, 10, 64)
		}
		return v
	}
	s := TopicSettings{
		RetentionMs:          long("retention.ms"),
		RetentionBytes:       long("retention.bytes"),
		MaxMessageBytes:      int32(long("max.message.bytes")),
		LogAppendTime:        get("message.timestamp.type") == "LogAppendTime",
		TimestampBeforeMaxMs: long("message.timestamp.before.max.ms"),
		TimestampAfterMaxMs:  long("message.timestamp.after.max.ms"),
		DeleteRetentionMs:    long("delete.retention.ms"),
		MinCompactionLagMs:   long("min.compaction.lag.ms"),
		MaxCompactionLagMs:   long("max.compaction.lag.ms"),
	}
	s.MinCleanableDirtyRatio, _ = strconv.ParseFloat(get("min.cleanable.dirty.ratio"), 64)
	if r := s.MinCleanableDirtyRatio; !(r >= 0 && r <= 1) {
		s.MinCleanableDirtyRatio = 0.5
	}
	if diff := long("message.timestamp.difference.max.ms"); diff != maxLong {
		if s.TimestampBeforeMaxMs == maxLong {
			s.TimestampBeforeMaxMs = diff
		}
		if s.TimestampAfterMaxMs == maxLong {
			s.TimestampAfterMaxMs = diff
		}
	}
	for _, p := range strings.Split(get("cleanup.policy"), ",") {
		switch strings.TrimSpace(p) {
		case "compact":
			s.Compact = true
		case "delete":
			s.Delete = true
		}
	}
	return s
}

// RetentionApplies reports whether retention by time or bytes removes data
// from this topic.
func (s TopicSettings) RetentionApplies() bool { return s.Delete || !s.Compact }

// BoundsTimestamps reports whether produced records' timestamps are
// checked: with CreateTime and a finite before or after bound.
func (s TopicSettings) BoundsTimestamps() bool {
	return !s.LogAppendTime && (s.TimestampBeforeMaxMs != maxLong || s.TimestampAfterMaxMs != maxLong)
}

// TimestampRange is the range [lo, hi] of record timestamps a CreateTime
// topic accepts at time now (milliseconds), saturating at the ends of
// int64.
func (s TopicSettings) TimestampRange(now int64) (lo, hi int64) {
	lo, hi = math.MinInt64, maxLong
	if now >= math.MinInt64+s.TimestampBeforeMaxMs {
		lo = now - s.TimestampBeforeMaxMs
	}
	if now <= maxLong-s.TimestampAfterMaxMs {
		hi = now + s.TimestampAfterMaxMs
	}
	return lo, hi
}

// TimestampAllowed reports whether a record timestamp may be produced at
// time now. Kafka exempts records without a timestamp (-1).
func (s TopicSettings) TimestampAllowed(ts, now int64) bool {
	if s.LogAppendTime || ts == -1 {
		return true
	}
	lo, hi := s.TimestampRange(now)
	return lo <= ts && ts <= hi
}

func validateCleanupPolicy(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("must be delete, compact, or both separated by a comma")
	}
	for _, p := range strings.Split(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete", "compact":
		default:
			return fmt.Errorf("%q is not a cleanup policy (delete, compact)", p)
		}
	}
	return nil
}

// intRange accepts a 32-bit integer in [lo, hi].
func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("not a 32-bit integer")
		}
		return checkRange(n, lo, hi, maxInt)
	}
}

// longRange accepts a 64-bit integer in [lo, hi].
func longRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not a 64-bit integer")
		}
		return checkRange(n, lo, hi, maxLong)
	}
}

func checkRange(n, lo, hi, top int64) error {
	switch {
	case n >= lo && n <= hi:
		return nil
	case hi == top:
		return fmt.Errorf("must be %d or more", lo)
	default:
		return fmt.Errorf("must be between %d and %d", lo, hi)
	}
}

func validateGzipLevel(v string) error {
	if err := intRange(-1, 9)(v); err != nil || strings.TrimSpace(v) == "0" {
		return fmt.Errorf("must be -1 (gzip's default) or between 1 and 9")
	}
	return nil
}

func validateBoolean(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "false":
		return nil
	}
	return fmt.Errorf("must be true or false")
}

// validateRatio accepts a number between 0 and 1.
func validateRatio(v string) error {
	n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(n >= 0 && n <= 1) {
		return fmt.Errorf("must be a number between 0 and 1")
	}
	return nil
}

// throttledReplica is one partition:broker pair of a replication throttle.
var throttledReplica = regexp.MustCompile(`^([0-9]+:[0-9]+)?$`)

func validateThrottledReplicas(v string) error {
	if strings.TrimSpace(v) == "*" {
		return nil
	}
	for _, p := range strings.Split(v, ",") {
		if !throttledReplica.MatchString(strings.TrimSpace(p)) {
			return fmt.Errorf("must be * or a list of partition:broker pairs, e.g. 0:1,1:2")
		}
	}
	return nil
}

// kafkaVersion is a Kafka release as message.format.version takes it:
// 0.x versions have three parts, later ones two or more, and an
// inter-broker protocol suffix (-IVn) may follow.
var kafkaVersion = regexp.MustCompile(`^(0\.[0-9]+\.[0-9]+|[1-9][0-9]*\.[0-9]+)(\.[0-9]+)*(-IV[0-9]+)?$`)

func validateKafkaVersion(v string) error {
	if !kafkaVersion.MatchString(strings.TrimSpace(v)) {
		return fmt.Errorf("must be a Kafka version such as 2.8 or 3.0-IV1")
	}
	return nil
}

func validateOneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(allowed, strings.TrimSpace(v)) {
			return nil
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}
