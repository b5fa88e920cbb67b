package main

import (
	"strings"
	"testing"

	"github.com/floe-io/floe/agent"
)

type topicListJSON struct {
	Topics []topicSummary `json:"topics"`
}

type topicDescribeJSON struct {
	Topics []topicDescription `json:"topics"`
}

func configOf(d topicDescription, name string) (configDescription, bool) {
	for _, c := range d.Configs {
		if c.Name == name {
			return c, true
		}
	}
	return configDescription{}, false
}

func TestTopicCommands(t *testing.T) {
	b := startTestAgent(t, nil)

	// create: a sentence per topic, or JSON.
	r := mustRun(t, "", "topic", "create", "orders", "-p", "3", "-c", "retention.ms=3600000", "-c", "cleanup.policy=compact,delete", "-b", b)
	if r.stdout != "created topic orders (3 partitions, replication factor 1)\n" {
		t.Errorf("create output %q", r.stdout)
	}
	r = mustRun(t, "", "topic", "create", "events", "audit", "-p", "1", "-r", "3", "-o", "json", "-b", b)
	created := decodeJSON[topicResults](t, r.stdout)
	if len(created.Topics) != 2 || created.Topics[0].Name != "events" || created.Topics[0].Partitions != 1 || created.Topics[0].ReplicationFactor != 3 || created.Topics[0].ID == "" || created.Topics[1].Name != "audit" {
		t.Errorf("create json %+v", created)
	}
	wantFail(t, 1, `topic "orders" already exists`, "", "topic", "create", "orders", "-b", b)
	wantFail(t, 1, `retention.forever`, "", "topic", "create", "bad", "-c", "retention.forever=1", "-b", b)
	// One bad topic among several: the others are created, the exit is 1.
	r = wantFail(t, 1, "1 of 2 topics failed", "", "topic", "create", "fresh", "orders", "-b", b)
	if !strings.Contains(r.stdout, "created topic fresh") {
		t.Errorf("partial create: %v", r)
	}

	// list
	r = mustRun(t, "", "topic", "list", "-b", b)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TOPIC ") || !strings.Contains(lines[0], "PARTITIONS") || strings.Fields(lines[4])[0] != "orders" || strings.Fields(lines[4])[1] != "3" {
		t.Errorf("list table:\n%s", r.stdout)
	}
	list := decodeJSON[topicListJSON](t, mustRun(t, "", "topic", "list", "-o", "json", "-b", b).stdout)
	var names []string
	for _, ts := range list.Topics {
		names = append(names, ts.Name)
	}
	if strings.Join(names, ",") != "audit,events,fresh,orders" || list.Topics[3].Partitions != 3 || list.Topics[3].ReplicationFactor != 1 {
		t.Errorf("list json %+v", list)
	}

	// describe shows offsets once there are records.
	// orders is compacted: its records need keys.
	mustRun(t, "1:a\n2:b\n3:c\n4:d\n", "produce", "orders", "--partition", "1", "-K", ":", "-q", "-b", b)
	desc := decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "orders", "-o", "json", "-b", b).stdout)
	if len(desc.Topics) != 1 {
		t.Fatalf("describe json %+v", desc)
	}
	d := desc.Topics[0]
	if d.Name != "orders" || d.ID == "" || len(d.Partitions) != 3 {
		t.Fatalf("describe json %+v", d)
	}
	for _, p := range d.Partitions {
		wantEnd := int64(0)
		if p.Partition == 1 {
			wantEnd = 4
		}
		if p.StartOffset == nil || *p.StartOffset != 0 || p.EndOffset == nil || *p.EndOffset != wantEnd || p.Leader < 0 || len(p.Replicas) != 1 || p.Error != "" {
			t.Errorf("partition %+v, want offsets 0..%d", p, wantEnd)
		}
	}
	if c, ok := configOf(d, "retention.ms"); !ok || c.Value == nil || *c.Value != "3600000" || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("retention.ms %+v", c)
	}
	if c, ok := configOf(d, "cleanup.policy"); !ok || *c.Value != "compact,delete" {
		t.Errorf("cleanup.policy %+v", c)
	}
	if c, ok := configOf(d, "max.message.bytes"); !ok || c.Source != "DEFAULT_CONFIG" {
		t.Errorf("max.message.bytes %+v", c)
	}
	r = mustRun(t, "", "topic", "describe", "orders", "-b", b)
	for _, want := range []string{"Topic: orders", "Partitions: 3", "PARTITION  LEADER  REPLICAS  ISR  START  END", "retention.ms", "3600000", "topic", "default"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("describe table lacks %q:\n%s", want, r.stdout)
		}
	}
	r = wantFail(t, 1, `topic "nope" does not exist`, "", "topic", "describe", "orders", "nope", "-b", b)
	if !strings.Contains(r.stderr, "floe topic list") || !strings.Contains(r.stdout, "Topic: orders") {
		t.Errorf("describe with an unknown topic: %v", r)
	}

	// alter: set and delete, seen by describe.
	r = mustRun(t, "", "topic", "alter", "orders", "--set", "retention.ms=60000", "--delete", "cleanup.policy", "-b", b)
	if !strings.Contains(r.stdout, "altered topic orders: set retention.ms=60000; deleted cleanup.policy") {
		t.Errorf("alter output %q", r.stdout)
	}
	d = decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "orders", "-o", "json", "-b", b).stdout).Topics[0]
	if c, _ := configOf(d, "retention.ms"); *c.Value != "60000" || c.Source != "DYNAMIC_TOPIC_CONFIG" {
		t.Errorf("after alter retention.ms %+v", c)
	}
	if c, _ := configOf(d, "cleanup.policy"); c.Source == "DYNAMIC_TOPIC_CONFIG" || *c.Value != "delete" {
		t.Errorf("after alter cleanup.policy %+v", c)
	}
	r = mustRun(t, "", "topic", "alter", "events", "--set", "retention.bytes=1048576", "-o", "json", "-b", b)
	if res := decodeJSON[topicResults](t, r.stdout); len(res.Topics) != 1 || res.Topics[0].Error != "" {
		t.Errorf("alter json %+v", res)
	}
	wantFail(t, 1, "retention.ms", "", "topic", "alter", "orders", "--set", "retention.ms=tomorrow", "-b", b)
	wantFail(t, 1, `topic "nope" does not exist`, "", "topic", "alter", "nope", "--set", "retention.ms=1", "-b", b)
	// One unknown topic among several, in JSON: every topic has its result,
	// the exit is 1.
	r = wantFail(t, 1, "1 of 2 topics failed", "", "topic", "alter", "events", "nope", "--set", "retention.bytes=2097152", "-o", "json", "-b", b)
	if res := decodeJSON[topicResults](t, r.stdout); len(res.Topics) != 2 || res.Topics[0].Name != "events" || res.Topics[0].Error != "" ||
		res.Topics[1].Name != "nope" || !strings.Contains(res.Topics[1].Error, `topic "nope" does not exist`) {
		t.Errorf("alter json with an unknown topic %+v", res)
	}

	// add-partitions: grow, same count is fine, shrinking is not.
	r = mustRun(t, "", "topic", "add-partitions", "orders", "--total", "5", "-b", b)
	if r.stdout != "topic orders: 3 -> 5 partitions\n" {
		t.Errorf("add-partitions output %q", r.stdout)
	}
	r = mustRun(t, "", "topic", "add-partitions", "orders", "--total", "5", "-o", "json", "-b", b)
	if res := decodeJSON[topicResults](t, r.stdout); res.Topics[0].PartitionsBefore != 5 || res.Topics[0].Partitions != 5 {
		t.Errorf("add-partitions again %+v", res)
	}
	wantFail(t, 1, "partitions cannot be removed", "", "topic", "add-partitions", "orders", "--total", "2", "-b", b)
	wantFail(t, 1, `topic "nope" does not exist`, "", "topic", "add-partitions", "nope", "--total", "2", "-b", b)
	if l := decodeJSON[topicListJSON](t, mustRun(t, "", "topic", "list", "-o", "json", "-b", b).stdout); l.Topics[3].Partitions != 5 {
		t.Errorf("after add-partitions %+v", l.Topics[3])
	}

	// delete: scripts (stdin not a terminal) need no --yes.
	r = mustRun(t, "", "topic", "delete", "events", "-b", b)
	if r.stdout != "deleted topic events\n" {
		t.Errorf("delete output %q", r.stdout)
	}
	r = mustRun(t, "", "topic", "delete", "fresh", "-o", "json", "-b", b)
	if res := decodeJSON[topicResults](t, r.stdout); len(res.Topics) != 1 || res.Topics[0].Name != "fresh" || res.Topics[0].Error != "" {
		t.Errorf("delete json %+v", res)
	}
	wantFail(t, 1, `topic "events" does not exist`, "", "topic", "delete", "events", "-b", b)

	// At a terminal it asks, saying what would be lost.
	saved := isTerminal
	t.Cleanup(func() { isTerminal = saved })
	isTerminal = func(v any) bool { _, ok := v.(*strings.Reader); return ok }
	r = wantFail(t, 1, "not deleted", "n\n", "topic", "delete", "orders", "-b", b)
	if !strings.Contains(r.stderr, "Delete orders (5 partitions, 4 records)? This cannot be undone. [y/N]") {
		t.Errorf("prompt: %v", r)
	}
	wantFail(t, 1, "not deleted", "", "topic", "delete", "orders", "-b", b) // no answer
	t.Setenv("FLOE_YES", "1")                                               // never read
	wantFail(t, 1, "not deleted", "\n", "topic", "delete", "orders", "-b", b)
	mustRun(t, "y\n", "topic", "delete", "orders", "-b", b)
	mustRun(t, "", "topic", "delete", "audit", "--yes", "-b", b)
	if l := decodeJSON[topicListJSON](t, mustRun(t, "", "topic", "list", "-o", "json", "-b", b).stdout); len(l.Topics) != 0 {
		t.Errorf("topics left: %+v", l)
	}
}

func TestProduceToMissingTopicWithoutAutoCreate(t *testing.T) {
	b := startTestAgent(t, nil)
	r := wantFail(t, 1, `topic "nope" does not exist and the cluster does not create topics on first use: create it with `+"`floe topic create nope`", "x\n", "produce", "nope", "-b", b)
	if strings.Contains(r.stderr, "produced") {
		t.Errorf("read input before checking the topic: %v", r)
	}
	// Where the cluster auto-creates topics (floe dev), produce creates it.
	b2 := startTestAgent(t, func(c *agent.Config) { c.AutoCreateTopics = true; c.DefaultPartitions = 2 })
	mustRun(t, "a\nb\n", "produce", "demo", "-b", b2)
	if l := decodeJSON[topicListJSON](t, mustRun(t, "", "topic", "list", "-o", "json", "-b", b2).stdout); len(l.Topics) != 1 || l.Topics[0].Partitions != 2 {
		t.Errorf("auto-created: %+v", l)
	}
}

// Topics can be created and altered with any topic config Kafka defines,
// as Kafka Streams and connectors create them; describe shows the configs
// floe does not act on with their Kafka defaults.
func TestTopicKafkaConfigs(t *testing.T) {
	b := startTestAgent(t, nil)

	mustRun(t, "", "topic", "create", "app-repartition", "-p", "2",
		"-c", "cleanup.policy=delete", "-c", "segment.ms=600000", "-c", "segment.bytes=52428800",
		"-c", "retention.ms=-1", "-c", "message.timestamp.type=CreateTime", "-c", "min.compaction.lag.ms=0",
		"-c", "compression.type=producer", "-c", "message.timestamp.difference.max.ms=86400000", "-b", b)
	mustRun(t, "", "topic", "alter", "app-repartition", "--set", "preallocate=true", "--set", "min.cleanable.dirty.ratio=0.1", "-b", b)
	d := decodeJSON[topicDescribeJSON](t, mustRun(t, "", "topic", "describe", "app-repartition", "-o", "json", "-b", b).stdout).Topics[0]
	for name, want := range map[string]struct{ value, source string }{
		"segment.ms":                     {"600000", "DYNAMIC_TOPIC_CONFIG"},
		"preallocate":                    {"true", "DYNAMIC_TOPIC_CONFIG"},
		"min.cleanable.dirty.ratio":      {"0.1", "DYNAMIC_TOPIC_CONFIG"},
		"segment.jitter.ms":              {"0", "DEFAULT_CONFIG"},
		"file.delete.delay.ms":           {"60000", "DEFAULT_CONFIG"},
		"unclean.leader.election.enable": {"false", "DEFAULT_CONFIG"},
	} {
		if c, ok := configOf(d, name); !ok || c.Value == nil || *c.Value != want.value || c.Source != want.source {
			t.Errorf("%s: %+v, want %s from %s", name, c, want.value, want.source)
		}
	}
	wantFail(t, 1, `segment.ms="0": must be 1 or more`, "", "topic", "alter", "app-repartition", "--set", "segment.ms=0", "-b", b)
	wantFail(t, 1, `compression.type="brotli": must be one of`, "", "topic", "create", "bad", "-c", "compression.type=brotli", "-b", b)
	wantFail(t, 1, "segment.msec", "", "topic", "create", "bad", "-c", "segment.msec=1", "-b", b)
}
