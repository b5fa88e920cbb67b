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
