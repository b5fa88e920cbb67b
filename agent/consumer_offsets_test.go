package agent_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
)

// offsetsFeedConfig makes the __consumer_offsets feed quick for tests.
func offsetsFeedConfig(cfg *agent.Config) {
	fastGroups(cfg)
	cfg.Groups.OffsetsTopicLinger = 10 * time.Millisecond
}

// kafkaPartitionFor is Kafka's partitionFor(group) on 50 partitions,
// written again here so the test checks the agent against an independent
// implementation of Java's String.hashCode.
func kafkaPartitionFor(group string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = h*31 + int32(u)
	}
	if h < 0 {
		h = -h // MinInt32 stays negative and ...
	}
	if h < 0 {
		h = 0 // ... Utils.abs makes it 0
	}
	return h % 50
}

// offsetsTopicReader follows __consumer_offsets from the start and keeps
// the latest value of every key, decoded as Kafka tools decode it.
type offsetsTopicReader struct {
	t  *testing.T
	cl *kgo.Client
	// offsets[group/topic/partition] is the latest committed offset, or
	// -1 after a tombstone.
	offsets map[string]int64
	// groups[group] is the latest group metadata; nil after a tombstone.
	groups map[string]*kmsg.GroupMetadataValue
	// offsetVersions counts OffsetCommitValue versions seen.
	offsetVersions map[int16]int
	// counts[group/topic/partition] counts the offset records read.
	counts map[string]int
}

func readOffsetsTopic(t *testing.T, c *testCluster) *offsetsTopicReader {
	return &offsetsTopicReader{
		t:              t,
		cl:             c.client(kgo.ConsumeTopics("__consumer_offsets"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond)),
		offsets:        map[string]int64{},
		groups:         map[string]*kmsg.GroupMetadataValue{},
		offsetVersions: map[int16]int{},
		counts:         map[string]int{},
	}
}

// until polls until cond holds.
func (r *offsetsTopicReader) until(what string, cond func() bool) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !cond() {
		fs := r.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("timed out reading __consumer_offsets until %s; offsets %v", what, r.offsets)
		}
		fs.EachError(func(topic string, p int32, err error) {
			r.t.Fatalf("fetching %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(r.apply)
	}
}

func (r *offsetsTopicReader) apply(rec *kgo.Record) {
	t := r.t
	t.Helper()
	if len(rec.Key) < 2 {
		t.Fatalf("record at %d/%d has key %x", rec.Partition, rec.Offset, rec.Key)
	}
	switch v := int16(binary.BigEndian.Uint16(rec.Key)); v {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(rec.Key); err != nil {
			t.Fatalf("offset key: %v", err)
		}
		if want := kafkaPartitionFor(k.Group); rec.Partition != want {
			t.Fatalf("group %q's offset is in partition %d, Kafka puts it in %d", k.Group, rec.Partition, want)
		}
		name := fmt.Sprintf("%s/%s/%d", k.Group, k.Topic, k.Partition)
		r.counts[name]++
		if rec.Value == nil {
			r.offsets[name] = -1
			return
		}
		var val kmsg.OffsetCommitValue
		if err := val.ReadFrom(rec.Value); err != nil {
			t.Fatalf("offset value of %s: %v", name, err)
		}
		r.offsetVersions[val.Version]++
		if val.CommitTimestamp <= 0 {
			t.Fatalf("offset value of %s has commit timestamp %d", name, val.CommitTimestamp)
		}
		r.offsets[name] = val.Offset
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(rec.Key); err != nil {
			t.Fatalf("group key: %v", err)
		}
		if want := kafkaPartitionFor(k.Group); rec.Partition != want {
			t.Fatalf("group %q's metadata is in partition %d, Kafka puts it in %d", k.Group, rec.Partition, want)
		}
		if rec.Value == nil {
			r.groups[k.Group] = nil
			return
		}
		var val kmsg.GroupMetadataValue
		if err := val.ReadFrom(rec.Value); err != nil {
			t.Fatalf("group value of %s: %v", k.Group, err)
		}
		r.groups[k.Group] = &val
	default:
		t.Fatalf("key version %d", v)
	}
}

func (r *offsetsTopicReader) has(want map[string]int64) bool {
	for k, v := range want {
		if got, ok := r.offsets[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Committed offsets and group metadata appear in __consumer_offsets as
// Kafka writes them, and deleting a group writes tombstones.
func TestConsumerOffsetsTopic(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(offsetsFeedConfig)
	createTopic(t, c, "t", 3, nil)
	adm := c.admin()
	ctx := testCtx(t)

	// The topic is there from the start: internal, 50 partitions.
	topics, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := topics["__consumer_offsets"]
	if !ok || !d.IsInternal || len(d.Partitions) != 50 {
		t.Fatalf("__consumer_offsets: %+v (listed %v)", d, ok)
	}

	m := c.joinGroup("readers", []string{"t"})
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 3, m) }, "the member owns t")
	commitSync(t, m.cl, "t", map[int32]int64{0: 3, 1: 5, 2: 7})
	if r, err := adm.CommitOffsets(ctx, "simple", offsets("t", map[int32]int64{1: 11})); err != nil || r.Error() != nil {
		t.Fatalf("simple commit: %v %v", err, r.Error())
	}

	r := readOffsetsTopic(t, c)
	want := map[string]int64{"readers/t/0": 3, "readers/t/1": 5, "readers/t/2": 7, "simple/t/1": 11}
	r.until("the commits are there", func() bool {
		g := r.groups["readers"]
		return r.has(want) && g != nil && len(g.Members) == 1 && len(g.Members[0].Assignment) > 0
	})
	// Offset values are v3; group metadata v1, with the member's
	// assignment as the leader sent it.
	if len(r.offsetVersions) != 1 || r.offsetVersions[3] == 0 {
		t.Fatalf("offset value versions %v, want only v3", r.offsetVersions)
	}
	g := r.groups["readers"]
	if g.Version != 1 || g.ProtocolType != "consumer" || g.Protocol == nil || g.Leader == nil || *g.Leader != g.Members[0].MemberID {
		t.Fatalf("group metadata %+v", g)
	}
	var assigned kmsg.ConsumerMemberAssignment
	if err := assigned.ReadFrom(g.Members[0].Assignment); err != nil || len(assigned.Topics) != 1 || len(assigned.Topics[0].Partitions) != 3 {
		t.Fatalf("assignment %+v %v", assigned, err)
	}
	if _, ok := r.groups["simple"]; ok {
		t.Fatal("a group that only commits offsets has group metadata; Kafka writes none")
	}

	// A later commit supersedes the earlier one.
	commitSync(t, m.cl, "t", map[int32]int64{0: 4})
	want["readers/t/0"] = 4
	r.until("the second commit is there", func() bool { return r.has(want) })

	// The member leaves: the group is Empty, with no members.
	m.stop()
	r.until("the group is empty", func() bool { g := r.groups["readers"]; return g != nil && len(g.Members) == 0 })

	// Deleting groups and offsets writes tombstones.
	del, err := adm.DeleteGroups(ctx, "readers")
	if err != nil || del["readers"].Err != nil {
		t.Fatalf("deleting the group: %v %+v", err, del)
	}
	if _, err := adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"t": {1: {}}}); err != nil {
		t.Fatal(err)
	}
	r.until("tombstones are there", func() bool {
		g, seen := r.groups["readers"]
		return seen && g == nil && r.has(map[string]int64{"readers/t/0": -1, "readers/t/1": -1, "readers/t/2": -1, "simple/t/1": -1})
	})

	// Clients may read the topic, not write or delete it.
	err = c.client().ProduceSync(ctx, &kgo.Record{Topic: "__consumer_offsets", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("producing to __consumer_offsets: %v", err)
	}
	dt, err := adm.DeleteTopics(ctx, "__consumer_offsets")
	if err != nil || dt["__consumer_offsets"].Err == nil {
		t.Fatalf("deleting __consumer_offsets: %v %+v", err, dt)
	}
}

// A coordinator that takes a group over writes its latest state to
// __consumer_offsets again, so a record the old coordinator had not yet
// flushed is not missing for long.
func TestConsumerOffsetsReemittedOnTakeover(t *testing.T) {
	c := newTestCluster(t)
	sweepOften := func(cfg *agent.Config) {
		offsetsFeedConfig(cfg)
		cfg.Groups.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	}
	a0 := c.addAgent(sweepOften)
	createTopic(t, c, "t", 1, nil)
	adm := c.admin()
	ctx := testCtx(t)
	if r, err := adm.CommitOffsets(ctx, "moving", offsets("t", map[int32]int64{0: 21})); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	r := readOffsetsTopic(t, c)
	r.until("the commit is there", func() bool { return r.has(map[string]int64{"moving/t/0": 21}) })

	// Another agent takes the group over when the first one stops; its
	// sweep loads the group and writes it again.
	c.addAgent(sweepOften)
	if err := a0.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r = readOffsetsTopic(t, c)
	r.until("the offset is written again", func() bool { return r.counts["moving/t/0"] >= 2 })
	if r.offsets["moving/t/0"] != 21 {
		t.Fatalf("offset written again as %d, want 21", r.offsets["moving/t/0"])
	}
}

// Coordinators write their groups' latest state again every re-emit
// interval, so it stays within the topic's retention.
func TestConsumerOffsetsReemittedPeriodically(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) {
		offsetsFeedConfig(cfg)
		cfg.Groups.OffsetsRetentionCheckInterval = 50 * time.Millisecond
		cfg.Groups.OffsetsTopicReemitInterval = 200 * time.Millisecond
	})
	createTopic(t, c, "t", 1, nil)
	ctx := testCtx(t)
	if r, err := c.admin().CommitOffsets(ctx, "idle", offsets("t", map[int32]int64{0: 8})); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	r := readOffsetsTopic(t, c)
	start := time.Now()
	r.until("the offset is written three more times", func() bool { return r.counts["idle/t/0"] >= 4 })
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("four records after %s; the re-emit interval is 200ms", took)
	}
	if r.offsets["idle/t/0"] != 8 {
		t.Fatalf("offset %d, want 8", r.offsets["idle/t/0"])
	}
}
