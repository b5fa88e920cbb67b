package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ConfigType is Kafka's DescribeConfigs config type.
type ConfigType int8

// Kafka's config type codes.
const (
	ConfigBoolean ConfigType = 1
	ConfigString  ConfigType = 2
	ConfigInt     ConfigType = 3
	ConfigLong    ConfigType = 5
	ConfigList    ConfigType = 7
)

// TopicConfigDef describes one topic config floe understands.
type TopicConfigDef struct {
	Name       string     // topic-level name, e.g. retention.ms
	BrokerName string     // the broker default it falls back to, e.g. log.retention.ms
	Type       ConfigType // Kafka config type
	Default    string     // Kafka's default when no broker default is set
	Doc        string
	validate   func(string) error
}

// TopicConfigDefs lists every topic config floe accepts, in name order.
var TopicConfigDefs = []TopicConfigDef{
	{
		Name: "cleanup.policy", BrokerName: "log.cleanup.policy", Type: ConfigList, Default: "delete",
		Doc:      "delete: retention.ms and retention.bytes remove old data. compact: floe keeps every record (key-based compaction is not performed) and retention does not apply. compact,delete: retention applies.",
		validate: validateCleanupPolicy,
	},
	{
		Name: "max.message.bytes", BrokerName: "message.max.bytes", Type: ConfigInt, Default: "1048588",
		Doc:      "The largest record batch size accepted, after compression. Larger batches get MESSAGE_TOO_LARGE.",
		validate: validateIntRange(0, 1<<30),
	},
	{
		Name: "message.timestamp.type", BrokerName: "log.message.timestamp.type", Type: ConfigString, Default: "CreateTime",
		Doc:      "CreateTime keeps the producer's timestamps; LogAppendTime replaces them with the time the agent accepted the batch.",
		validate: validateOneOf("CreateTime", "LogAppendTime"),
	},
	{
		Name: "min.insync.replicas", BrokerName: "min.insync.replicas", Type: ConfigInt, Default: "1",
		Doc:      "Accepted for compatibility. floe acknowledges only after the object store and etcd hold the data, so every acknowledged write is already replicated by them.",
		validate: validateIntRange(1, 1<<15),
	},
	{
		Name: "retention.bytes", BrokerName: "log.retention.bytes", Type: ConfigLong, Default: "-1",
		Doc:      "The most bytes a partition keeps before its oldest data is removed; -1 means no limit.",
		validate: validateLongMin(-1),
	},
	{
		Name: "retention.ms", BrokerName: "log.retention.ms", Type: ConfigLong, Default: "604800000",
		Doc:      "How long data is kept, by its newest timestamp, before it is removed; -1 keeps it forever.",
		validate: validateLongMin(-1),
	},
	{
		Name: "segment.bytes", BrokerName: "log.segment.bytes", Type: ConfigInt, Default: "1073741824",
		Doc:      "Accepted for compatibility; floe sizes its segment objects cluster-wide (--segment-target-bytes, --compaction-target-bytes).",
		validate: validateIntRange(14, 1<<31-1),
	},
}

// TopicConfigDef looks up a topic config by name.
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
		return fmt.Errorf("%w: unknown topic config %q (floe supports %s)", ErrInvalidConfig, name, strings.Join(topicConfigNames(), ", "))
	}
	if err := def.validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	return nil
}

// ValidateTopicConfigs checks a set of topic config overrides.
func ValidateTopicConfigs(configs map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		if err := ValidateTopicConfig(name, configs[name]); err != nil {
			return err
		}
	}
	return nil
}

func topicConfigNames() []string {
	names := make([]string, len(TopicConfigDefs))
	for i, d := range TopicConfigDefs {
		names[i] = d.Name
	}
	return names
}

// ConfigSource says where an effective config value came from, with
// Kafka's DescribeConfigs source codes.
type ConfigSource int8

// Kafka's config source codes.
const (
	SourceTopicOverride ConfigSource = 1 // DYNAMIC_TOPIC_CONFIG
	SourceBrokerStatic  ConfigSource = 4 // STATIC_BROKER_CONFIG
	SourceDefault       ConfigSource = 5 // DEFAULT_CONFIG
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
	if v, ok := b[def.BrokerName]; ok && v != def.Default {
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
		RetentionMs:     long("retention.ms"),
		RetentionBytes:  long("retention.bytes"),
		MaxMessageBytes: int32(long("max.message.bytes")),
		LogAppendTime:   get("message.timestamp.type") == "LogAppendTime",
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

func validateIntRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return fmt.Errorf("not a 32-bit integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

func validateLongMin(lo int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo {
			return fmt.Errorf("must be %d or more", lo)
		}
		return nil
	}
}

func validateOneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(allowed, v) {
			return nil
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}
