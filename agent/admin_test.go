package agent_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/metadata"
)

func TestTopicAdminWithKadm(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(nil)
	adm := c.admin()
	ctx := testCtx(t)

	// Create, including replication factor 3 on a single agent.
	retention := "3600000"
	created, err := adm.CreateTopics(ctx, 3, 3, map[string]*string{"retention.ms": &retention}, "orders", "events")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range created.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
		if r.NumPartitions != 3 || r.ReplicationFactor != 3 || r.ID == (kadm.TopicID{}) {
			t.Fatalf("create %s: %+v", r.Topic, r)
		}
	}

	// Usable at once: listed with three partitions, each with a leader
	// that is in the broker list.
	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(details.Names(), []string{"events", "orders"}) {
		t.Fatalf("topics %v", details.Names())
	}
	meta, err := adm.Metadata(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	brokers := map[int32]bool{}
	for _, b := range meta.Brokers {
		brokers[b.NodeID] = true
	}
	for _, p := range meta.Topics["orders"].Partitions {
		if !brokers[p.Leader] {
			t.Fatalf("partition %d leader %d not in brokers %v", p.Partition, p.Leader, meta.Brokers)
		}
	}
	if meta.Cluster == "" {
		t.Fatal("no cluster ID in metadata")
	}

	// Errors with Kafka's codes.
	dup, _ := adm.CreateTopic(ctx, 1, 1, nil, "orders")
	if !errors.Is(dup.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", dup.Err)
	}
	bad, _ := adm.CreateTopic(ctx, 1, 1, nil, "no/slashes")
	if !errors.Is(bad.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", bad.Err)
	}
	collide, _ := adm.CreateTopic(ctx, 1, 1, nil, "or.ders")
	if collide.Err != nil {
		t.Fatalf("or.ders does not collide with orders: %v", collide.Err)
	}
	collide2, _ := adm.CreateTopic(ctx, 1, 1, nil, "or_ders")
	if !errors.Is(collide2.Err, kerr.InvalidTopicException) {
		t.Fatalf("or_ders collides with or.ders: %v", collide2.Err)
	}
	unknownCfg := "x"
	badCfg, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.forever": &unknownCfg}, "cfg")
	if !errors.Is(badCfg.Err, kerr.InvalidConfig) || !strings.Contains(badCfg.ErrMessage, "retention.forever") {
		t.Fatalf("unknown config: %v %q", badCfg.Err, badCfg.ErrMessage)
	}
	zero, _ := adm.CreateTopic(ctx, 0, 1, nil, "zero")
	if !errors.Is(zero.Err, kerr.InvalidPartitions) {
		t.Fatalf("zero partitions: %v", zero.Err)
	}

	// Describe configs: override and defaults with their sources.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil || rc.Err != nil {
		t.Fatal(err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	if v := got["retention.ms"]; v.MaybeValue() != "3600000" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms %+v", v)
	}
	if v := got["cleanup.policy"]; v.MaybeValue() != "delete" || v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("cleanup.policy %+v", v)
	}

	// Incremental alter: set, then delete back to the default.
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.bytes", Value: kadm.StringPtr("1048576")}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "orders")
	if err != nil || ar[0].Err != nil {
		t.Fatal(err, ar)
	}
	bad2, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("tomorrow")}}, "orders")
	if err != nil || !errors.Is(bad2[0].Err, kerr.InvalidConfig) {
		t.Fatalf("bad value: %v %v", err, bad2)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "orders")
	rc, _ = rcs.On("orders", nil)
	for _, cfg := range rc.Configs {
		switch cfg.Key {
		case "retention.bytes":
			if cfg.MaybeValue() != "1048576" {
				t.Fatalf("retention.bytes %q", cfg.MaybeValue())
			}
		case "retention.ms":
			if cfg.Source != kmsg.ConfigSourceDefaultConfig {
				t.Fatalf("retention.ms after delete: %+v", cfg)
			}
		}
	}

	// Append to a list config.
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, "orders")
	if err != nil || ar[0].Err != nil {
		t.Fatal(err, ar)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "orders")
	rc, _ = rcs.On("orders", nil)
	for _, cfg := range rc.Configs {
		if cfg.Key == "cleanup.policy" && cfg.MaybeValue() != "delete,compact" {
			t.Fatalf("cleanup.policy after append: %q", cfg.MaybeValue())
		}
	}

	// Non-incremental alter replaces the whole set.
	sr, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "max.message.bytes", Value: kadm.StringPtr("2097152")}}, "orders")
	if err != nil || sr[0].Err != nil {
		t.Fatal(err, sr)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "orders")
	rc, _ = rcs.On("orders", nil)
	for _, cfg := range rc.Configs {
		if cfg.Key == "retention.bytes" && cfg.Source != kmsg.ConfigSourceDefaultConfig {
			t.Fatalf("retention.bytes survived a full replace: %+v", cfg)
		}
		if cfg.Key == "max.message.bytes" && cfg.MaybeValue() != "2097152" {
			t.Fatalf("max.message.bytes %+v", cfg)
		}
	}

	// Partitions: grow, never shrink.
	up, err := adm.UpdatePartitions(ctx, 6, "orders")
	if err != nil || up["orders"].Err != nil {
		t.Fatal(err, up)
	}
	down, _ := adm.UpdatePartitions(ctx, 2, "orders")
	if !errors.Is(down["orders"].Err, kerr.InvalidPartitions) || !strings.Contains(down["orders"].ErrMessage, "never removed") {
		t.Fatalf("shrink: %v %q", down["orders"].Err, down["orders"].ErrMessage)
	}
	details, _ = adm.ListTopics(ctx, "orders")
	if n := len(details["orders"].Partitions); n != 6 {
		t.Fatalf("orders has %d partitions after growing to 6", n)
	}

	// Broker configs show defaults and flags.
	brs, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range brs {
		for _, cfg := range r.Configs {
			if cfg.Key == "log.retention.ms" {
				found = true
			}
		}
	}
	if !found {
		t.Fatal("log.retention.ms missing from broker configs")
	}

	// Delete.
	del, err := adm.DeleteTopics(ctx, "events", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if r := del["events"]; r.Err != nil {
		t.Fatalf("delete events: %v", r.Err)
	}
	if r := del["missing"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("delete missing: %v", r.Err)
	}
	// A metadata request of its own: kadm answers from the client's
	// metadata cache when it is younger than MetadataMinAge.
	mresp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range mresp.Topics {
		if mt.Topic != nil && *mt.Topic == "events" {
			t.Fatal("events still listed after delete")
		}
	}
}

func TestAutoCreateFollowsConfig(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) { cfg.AutoCreateTopics = false })
	ctx := testCtx(t)
	cl := c.client()

	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("auto-create off: %v", err)
	}

	c2 := newTestCluster(t)
	c2.addAgent(func(cfg *agent.Config) { cfg.AutoCreateTopics = true; cfg.DefaultPartitions = 4 })
	resp, err = req.RequestWith(ctx, c2.client())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 4 {
		t.Fatalf("auto-create on: code %d, %d partitions", resp.Topics[0].ErrorCode, len(resp.Topics[0].Partitions))
	}
}

// Every topic config Kafka defines is accepted, as the tools that create
// topics send them (here, a Kafka Streams changelog topic's and a
// connector's settings), and DescribeConfigs reports the ones floe does not
// act on with Kafka's defaults, types and synonyms.
func TestTopicConfigsKafkaDefines(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(nil)
	adm := c.admin()
	ctx := testCtx(t)

	streams := map[string]*string{
		"cleanup.policy":                      kadm.StringPtr("compact"),
		"segment.ms":                          kadm.StringPtr("600000"),
		"segment.bytes":                       kadm.StringPtr("52428800"),
		"min.compaction.lag.ms":               kadm.StringPtr("86400000"),
		"min.cleanable.dirty.ratio":           kadm.StringPtr("0.01"),
		"delete.retention.ms":                 kadm.StringPtr("100"),
		"message.timestamp.type":              kadm.StringPtr("CreateTime"),
		"message.timestamp.difference.max.ms": kadm.StringPtr("86400000"),
		"compression.type":                    kadm.StringPtr("lz4"),
		"unclean.leader.election.enable":      kadm.StringPtr("false"),
		"local.retention.ms":                  kadm.StringPtr("3600000"),
		"message.downconversion.enable":       kadm.StringPtr("true"),
		"message.format.version":              kadm.StringPtr("2.8"),
		"remote.storage.enable":               kadm.StringPtr("true"),
	}
	created, err := adm.CreateTopic(ctx, 3, 3, streams, "app-store-changelog")
	if err != nil || created.Err != nil {
		t.Fatalf("Streams-like create: %v %v %q", err, created.Err, created.ErrMessage)
	}
	if v := created.Configs["segment.ms"]; v.MaybeValue() != "600000" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("segment.ms in the create response: %+v", v)
	}

	// Unknown names and values outside Kafka's rules are still refused,
	// with the config and the rule named.
	for cfg, want := range map[string]string{"segment.msec": `unknown topic config "segment.msec"`, "segment.ms": "must be 1 or more"} {
		r, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{cfg: kadm.StringPtr("0")}, "refused")
		if !errors.Is(r.Err, kerr.InvalidConfig) || !strings.Contains(r.ErrMessage, want) {
			t.Errorf("%s=0: %v %q, want INVALID_CONFIG saying %q", cfg, r.Err, r.ErrMessage, want)
		}
	}

	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	req.IncludeDocumentation = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType = kmsg.ConfigResourceTypeTopic
	rr.ResourceName = "app-store-changelog"
	req.Resources = append(req.Resources, rr)
	resp, err := req.RequestWith(ctx, c.client())
	if err != nil || resp.Resources[0].ErrorCode != 0 {
		t.Fatal(err, resp)
	}
	got := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, cfg := range resp.Resources[0].Configs {
		got[cfg.Name] = cfg
	}
	for _, def := range metadata.TopicConfigDefs {
		if _, ok := got[def.Name]; !ok {
			t.Errorf("%s not described", def.Name)
		}
	}
	synonyms := func(cfg kmsg.DescribeConfigsResponseResourceConfig) string {
		var s []string
		for _, syn := range cfg.ConfigSynonyms {
			s = append(s, syn.Source.String()+":"+syn.Name+"="+*syn.Value)
		}
		return strings.Join(s, " ")
	}
	for _, want := range []struct {
		name, value string
		source      kmsg.ConfigSource
		typ         kmsg.ConfigType
		synonyms    string
	}{
		{"segment.jitter.ms", "0", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeLong, "DEFAULT_CONFIG:log.roll.jitter.ms=0"},
		{"segment.ms", "600000", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeLong, "DYNAMIC_TOPIC_CONFIG:segment.ms=600000 DEFAULT_CONFIG:log.roll.ms=604800000"},
		{"min.cleanable.dirty.ratio", "0.01", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeDouble, "DYNAMIC_TOPIC_CONFIG:min.cleanable.dirty.ratio=0.01 DEFAULT_CONFIG:log.cleaner.min.cleanable.ratio=0.5"},
		{"preallocate", "false", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeBoolean, "DEFAULT_CONFIG:log.preallocate=false"},
		{"flush.messages", "9223372036854775807", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeLong, "DEFAULT_CONFIG:log.flush.interval.messages=9223372036854775807"},
		{"compression.zstd.level", "3", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeInt, "DEFAULT_CONFIG:compression.zstd.level=3"},
		{"leader.replication.throttled.replicas", "", kmsg.ConfigSourceDefaultConfig, kmsg.ConfigTypeList, ""},
		{"remote.storage.enable", "true", kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeBoolean, "DYNAMIC_TOPIC_CONFIG:remote.storage.enable=true"},
	} {
		cfg := got[want.name]
		if cfg.Value == nil || *cfg.Value != want.value || cfg.Source != want.source || cfg.ConfigType != want.typ || synonyms(cfg) != want.synonyms {
			t.Errorf("%s: value %q source %v type %v synonyms %q; want %q %v %v %q", want.name, (&kadm.Config{Value: cfg.Value}).MaybeValue(), cfg.Source, cfg.ConfigType, synonyms(cfg), want.value, want.source, want.typ, want.synonyms)
		}
		if cfg.Documentation == nil || !strings.Contains(*cfg.Documentation, "no effect in floe") {
			t.Errorf("%s: documentation %v does not say it has no effect in floe", want.name, cfg.Documentation)
		}
	}
	if doc := got["compression.type"].Documentation; doc == nil || !strings.Contains(*doc, "recompression is not implemented") {
		t.Errorf("compression.type documentation %v", doc)
	}

	// Replication throttles are lists: APPEND and SUBTRACT work on them,
	// down to the empty default.
	for _, op := range []kadm.IncrementalOp{kadm.AppendConfig, kadm.SubtractConfig} {
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: "leader.replication.throttled.replicas", Value: kadm.StringPtr("0:1")}}, "app-store-changelog")
		if err != nil || ar[0].Err != nil {
			t.Fatalf("op %v: %v %v", op, err, ar)
		}
	}
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, "app-store-changelog")
	if err != nil || !errors.Is(bad[0].Err, kerr.InvalidConfig) {
		t.Fatalf("emptying cleanup.policy: %v %v", err, bad)
	}
}
