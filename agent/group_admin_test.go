package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/agent"
)

func offsets(topic string, at map[int32]int64) kadm.Offsets {
	os := kadm.Offsets{}
	for p, o := range at {
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: o, LeaderEpoch: -1, Metadata: "m"})
	}
	return os
}

func TestGroupAdminAndCommittedOffsets(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "a", 3, nil)
	createTopic(t, c, "b", 1, nil)
	adm := c.admin()
	ctx := testCtx(t)

	// Offsets-only ("simple") commits need no group membership.
	r, err := adm.CommitOffsets(ctx, "simple", offsets("a", map[int32]int64{0: 10, 1: 11}))
	if err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	if r, err := adm.CommitOffsets(ctx, "simple", offsets("b", map[int32]int64{0: 5})); err != nil || r.Error() != nil {
		t.Fatalf("commit b: %v %v", err, r.Error())
	}
	if r, err := adm.CommitOffsets(ctx, "other", offsets("a", map[int32]int64{0: 99})); err != nil || r.Error() != nil {
		t.Fatalf("commit other: %v %v", err, r.Error())
	}
	r, err = adm.CommitOffsets(ctx, "simple", offsets("a", map[int32]int64{7: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Lookup("a", 7); !errors.Is(got.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("commit to a partition that does not exist: %v", got.Err)
	}

	fetched, err := adm.FetchOffsetsForTopics(ctx, "simple", "a")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32]int64{0: 10, 1: 11, 2: -1} {
		got, ok := fetched.Lookup("a", p)
		if !ok || got.Err != nil || got.At != want {
			t.Fatalf("simple a/%d: %+v, want %d", p, got, want)
		}
	}
	if got, _ := fetched.Lookup("a", 0); got.Metadata != "m" {
		t.Fatalf("metadata %q", got.Metadata)
	}
	// Groups keep independent offsets.
	other, err := adm.FetchOffsets(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := other.Lookup("a", 0); got.At != 99 || len(other) != 1 || len(other["a"]) != 1 {
		t.Fatalf("other: %+v", other)
	}
	// A group nobody used has nothing committed.
	none, err := adm.FetchOffsetsForTopics(ctx, "never", "a")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := none.Lookup("a", 0); got.At != -1 {
		t.Fatalf("never: %+v", got)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := listed["simple"]; !ok || g.State != "Empty" || g.ProtocolType != "" || len(listed) != 2 {
		t.Fatalf("listed %+v", listed)
	}

	// A live consumer group on topic a.
	m := c.joinGroup("live", []string{"a"})
	waitFor(t, 20*time.Second, func() bool { return balanced("a", 3, m) }, "the consumer owns topic a")
	described, err := adm.DescribeGroups(ctx, "live", "simple", "never")
	if err != nil {
		t.Fatal(err)
	}
	live := described["live"]
	if live.Err != nil || live.State != "Stable" || live.ProtocolType != "consumer" || live.Protocol == "" || len(live.Members) != 1 {
		t.Fatalf("live: %+v", live)
	}
	if assigned := live.AssignedPartitions(); len(assigned["a"]) != 3 {
		t.Fatalf("live assignment %v", assigned)
	}
	if member, _ := m.cl.GroupMetadata(); live.Members[0].MemberID != member || live.Members[0].ClientHost != "/127.0.0.1" {
		t.Fatalf("live member %+v, want %s", live.Members[0], member)
	}
	if s := described["simple"]; s.State != "Empty" || len(s.Members) != 0 {
		t.Fatalf("simple: %+v", s)
	}
	if n := described["never"]; n.State != "Dead" || !errors.Is(n.Err, kerr.GroupIDNotFound) {
		t.Fatalf("never: %+v", n)
	}
	stable, err := adm.ListGroups(ctx, "Stable")
	if err != nil || len(stable) != 1 || stable["live"].State != "Stable" {
		t.Fatalf("stable groups %+v %v", stable, err)
	}

	// Offsets of a topic the group consumes cannot be deleted; others can.
	if r, err := adm.CommitOffsets(ctx, "live", offsets("b", map[int32]int64{0: 1})); err != nil || !errors.Is(r.Error(), kerr.UnknownMemberID) {
		t.Fatalf("simple commit to a group with members: %v %v", err, r.Error())
	}
	del, err := adm.DeleteOffsets(ctx, "live", kadm.TopicsSet{"a": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := del["a"][0]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("deleting a subscribed topic's offset: %v", err)
	}
	del, err = adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"a": {0: {}}})
	if err != nil || del.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, del.Error())
	}
	fetched, _ = adm.FetchOffsetsForTopics(ctx, "simple", "a")
	if got, _ := fetched.Lookup("a", 0); got.At != -1 {
		t.Fatalf("a/0 after delete: %+v", got)
	}

	deleted, err := adm.DeleteGroups(ctx, "live", "simple", "never")
	if err != nil {
		t.Fatal(err)
	}
	if err := deleted["live"].Err; !errors.Is(err, kerr.NonEmptyGroup) {
		t.Fatalf("deleting a group with members: %v", err)
	}
	if err := deleted["simple"].Err; err != nil {
		t.Fatalf("deleting simple: %v", err)
	}
	if err := deleted["never"].Err; !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("deleting a group that does not exist: %v", err)
	}
	if fetched, _ := adm.FetchOffsets(ctx, "simple"); len(fetched) != 0 {
		t.Fatalf("offsets of a deleted group: %+v", fetched)
	}

	// Deleting a topic takes its committed offsets with it.
	if _, err := adm.DeleteTopics(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool {
		o, err := adm.FetchOffsets(ctx, "other")
		return err == nil && len(o) == 0
	}, "offsets of the deleted topic disappear")
	// Once the topic exists again, the old offsets do not come back.
	createTopic(t, c, "a", 3, nil)
	if o, err := adm.FetchOffsets(ctx, "other"); err != nil || len(o) != 0 {
		t.Fatalf("offsets after recreating the topic: %+v %v", o, err)
	}
}

func TestCommittedOffsetsOfEmptyGroupsExpire(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) {
		fastGroups(cfg)
		cfg.Groups.OffsetsRetention = time.Second
		cfg.Groups.OffsetsRetentionCheckInterval = 50 * time.Millisecond
	})
	createTopic(t, c, "t", 2, nil)
	adm := c.admin()
	ctx := testCtx(t)

	// A member keeps its group's offsets alive.
	m := c.joinGroup("active", []string{"t"})
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 2, m) }, "the member owns t")
	commitSync(t, m.cl, "t", map[int32]int64{0: 3})
	if r, err := adm.CommitOffsets(ctx, "idle", offsets("t", map[int32]int64{0: 7})); err != nil || r.Error() != nil {
		t.Fatalf("commit: %v %v", err, r.Error())
	}
	took := waitFor(t, 10*time.Second, func() bool {
		o, err := adm.FetchOffsets(ctx, "idle")
		return err == nil && len(o) == 0
	}, "the idle group's offsets expire")
	if took < 500*time.Millisecond {
		t.Fatalf("offsets expired after %s; retention is 1s", took)
	}
	// The expired group is gone altogether.
	waitFor(t, 5*time.Second, func() bool {
		l, err := adm.ListGroups(ctx)
		_, listed := l["idle"]
		return err == nil && !listed
	}, "the expired group is deleted")
	o, err := adm.FetchOffsets(ctx, "active")
	if got, _ := o.Lookup("t", 0); err != nil || got.At != 3 {
		t.Fatalf("active group's offset: %+v %v", got, err)
	}
}
