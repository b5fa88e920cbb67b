package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/floe-io/floe/agent"
)

// consumerGroups makes consumer-protocol timings suit raw-protocol tests:
// sessions long enough that no member expires between requests.
func consumerGroups(cfg *agent.Config) {
	fastGroups(cfg)
	cfg.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	cfg.Groups.ConsumerSessionTimeout = 30 * time.Second
}

// rawConsumerGroup sends consumer-protocol requests for one group.
type rawConsumerGroup struct {
	t     *testing.T
	cl    *kgo.Client
	ctx   context.Context
	group string
	topic [16]byte  // the subscribed topic's ID
	opts  []kgo.Opt // to reach the cluster with another client
}

// hb sends a heartbeat built by fill from one with the member's ID and
// epoch and nothing else set.
func (g rawConsumerGroup) hb(member string, epoch int32, fill func(*kmsg.ConsumerGroupHeartbeatRequest)) *kmsg.ConsumerGroupHeartbeatResponse {
	g.t.Helper()
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version = 1
	req.Group = g.group
	req.MemberID = member
	req.MemberEpoch = epoch
	if fill != nil {
		fill(req)
	}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("ConsumerGroupHeartbeat: %v", err)
	}
	return resp
}

// join joins member subscribed to topics.
func (g rawConsumerGroup) join(member string, rebalanceMs int32, topics ...string) *kmsg.ConsumerGroupHeartbeatResponse {
	g.t.Helper()
	return g.hb(member, 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.RebalanceTimeoutMillis = rebalanceMs
		r.SubscribedTopicNames = topics
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	})
}

// owning heartbeats at epoch saying the member owns partitions of the
// group's topic.
func (g rawConsumerGroup) owning(member string, epoch int32, partitions ...int32) *kmsg.ConsumerGroupHeartbeatResponse {
	g.t.Helper()
	return g.hb(member, epoch, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.RebalanceTimeoutMillis = -1
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if len(partitions) > 0 {
			rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
			rt.TopicID = g.topic
			rt.Partitions = partitions
			r.Topics = append(r.Topics, rt)
		}
	})
}

func (g rawConsumerGroup) describe() kmsg.ConsumerGroupDescribeResponseGroup {
	g.t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{g.group}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil || len(resp.Groups) != 1 {
		g.t.Fatalf("ConsumerGroupDescribe: %v", err)
	}
	return resp.Groups[0]
}

// assigned returns the partitions of the group's topic in a heartbeat
// response's assignment, and whether it carried one.
func (g rawConsumerGroup) assigned(resp *kmsg.ConsumerGroupHeartbeatResponse) ([]int32, bool) {
	if resp.Assignment == nil {
		return nil, false
	}
	var ps []int32
	for _, t := range resp.Assignment.Topics {
		if t.TopicID == g.topic {
			ps = append(ps, t.Partitions...)
		}
	}
	slices.Sort(ps)
	return ps, true
}

func (g rawConsumerGroup) member(d kmsg.ConsumerGroupDescribeResponseGroup, id string) *kmsg.ConsumerGroupDescribeResponseGroupMember {
	for i := range d.Members {
		if d.Members[i].MemberID == id {
			return &d.Members[i]
		}
	}
	return nil
}

// commit commits offset 1 of partitions of the group's topic with
// OffsetCommit at most maxVersion.
func (g rawConsumerGroup) commit(maxVersion int16, member string, epoch int32, partitions ...int32) int16 {
	g.t.Helper()
	versions := kversion.Stable()
	versions.SetMaxKeyVersion(int16(kmsg.OffsetCommit), maxVersion)
	cl, err := kgo.NewClient(append(g.opts, kgo.MaxVersions(versions))...)
	if err != nil {
		g.t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = g.group
	req.MemberID = member
	req.Generation = epoch
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "cg"
	rt.TopicID = g.topic
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(g.ctx, cl)
	if err != nil {
		g.t.Fatalf("OffsetCommit: %v", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 {
				return p.ErrorCode
			}
		}
	}
	return 0
}

func (g rawConsumerGroup) fetchOffsets(member string, epoch int32) int16 {
	g.t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 9
	rg := kmsg.NewOffsetFetchRequestGroup()
	rg.Group = g.group
	rg.MemberID = &member
	rg.MemberEpoch = epoch
	req.Groups = append(req.Groups, rg)
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil || len(resp.Groups) != 1 {
		g.t.Fatalf("OffsetFetch: %v", err)
	}
	return resp.Groups[0].ErrorCode
}

// The consumer protocol step by step: joins, incremental revocation
// before reassignment, epochs and fencing, commits checked against member
// epochs, leaves and static members, as Kafka's coordinator answers them.
func TestConsumerGroupHeartbeatProtocol(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(consumerGroups)
	createTopic(t, c, "cg", 6, nil)
	cl := c.client()
	ctx := testCtx(t)
	g := rawConsumerGroup{t: t, cl: cl, ctx: ctx, group: "cgp", topic: topicID(t, cl, "cg"), opts: c.seedOpts()}

	// Requests Kafka refuses before looking at the group.
	wantCode(t, "no member ID in v1", g.join("", 1000, "cg").ErrorCode, kerr.InvalidRequest)
	wantCode(t, "join without a rebalance timeout", g.join("x", 0, "cg").ErrorCode, kerr.InvalidRequest)
	wantCode(t, "join without a subscription", g.hb("x", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.RebalanceTimeoutMillis = 1000 }).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "epoch below -2", g.hb("x", -3, nil).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "unknown assignor", g.hb("x", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.RebalanceTimeoutMillis, r.SubscribedTopicNames, r.ServerAssignor = 1000, []string{"cg"}, kmsg.StringPtr("sticky")
	}).ErrorCode, kerr.UnsupportedAssignor)
	wantCode(t, "bad regex", g.hb("x", 0, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.RebalanceTimeoutMillis, r.SubscribedTopicRegex = 1000, kmsg.StringPtr("(")
	}).ErrorCode, kerr.InvalidRegularExpression)
	wantCode(t, "heartbeat of an unknown member", g.owning("x", 1).ErrorCode, kerr.UnknownMemberID)

	// A joins alone and gets everything at epoch 1.
	ra := g.join("a", 60000, "cg")
	wantCode(t, "a joins", ra.ErrorCode, nil)
	if ps, ok := g.assigned(ra); ra.MemberEpoch != 1 || !ok || len(ps) != 6 || ra.HeartbeatIntervalMillis != 100 {
		t.Fatalf("a joined at epoch %d with %v (interval %d ms)", ra.MemberEpoch, ps, ra.HeartbeatIntervalMillis)
	}
	if r := g.owning("a", 1, 0, 1, 2, 3, 4, 5); r.ErrorCode != 0 || r.MemberEpoch != 1 || r.Assignment != nil {
		t.Fatalf("a's keepalive: %v epoch %d assignment %v", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch, r.Assignment)
	}

	// B joins: epoch 2. Its half is still a's, so it gets nothing yet.
	rb := g.join("b", 60000, "cg")
	if ps, ok := g.assigned(rb); rb.ErrorCode != 0 || rb.MemberEpoch != 2 || !ok || len(ps) != 0 {
		t.Fatalf("b joined at epoch %d with %v: %v", rb.MemberEpoch, ps, kerr.ErrorForCode(rb.ErrorCode))
	}
	// A is told to give up three, at its old epoch.
	ra = g.owning("a", 1, 0, 1, 2, 3, 4, 5)
	aKeeps, ok := g.assigned(ra)
	if ra.ErrorCode != 0 || ra.MemberEpoch != 1 || !ok || len(aKeeps) != 3 {
		t.Fatalf("a at epoch %d keeps %v: %v", ra.MemberEpoch, aKeeps, kerr.ErrorForCode(ra.ErrorCode))
	}
	if d := g.describe(); d.State != "Reconciling" || d.Epoch != 2 || d.AssignmentEpoch != 2 || d.AssignorName != "uniform" {
		t.Fatalf("while a revokes: %s epoch %d/%d assignor %q", d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName)
	}
	// Until a says the three are gone, b gets none of them.
	g.owning("a", 1, 0, 1, 2, 3, 4, 5)
	if r := g.owning("b", 2); r.ErrorCode != 0 || r.Assignment != nil {
		t.Fatalf("b got %v while a still owns its partitions", r.Assignment)
	}
	// Commits: a at its epoch for what it owns; b's epoch is checked.
	wantCode(t, "a commits a partition it keeps", g.commit(9, "a", 1, aKeeps[0]), nil)
	wantCode(t, "b commits at a future epoch", g.commit(10, "b", 7, 0), kerr.StaleMemberEpoch)
	wantCode(t, "b commits at a future epoch, v8", g.commit(8, "b", 7, 0), kerr.IllegalGeneration)
	wantCode(t, "a commit without a member while the group has members", g.commit(9, "", -1, 0), kerr.UnknownMemberID)
	wantCode(t, "OffsetCommit v10 by topic ID", g.commit(10, "b", 2, 0), nil)

	// A acknowledges: it moves to epoch 2 and b gets its three.
	ra = g.owning("a", 1, aKeeps...)
	if ra.ErrorCode != 0 || ra.MemberEpoch != 2 {
		t.Fatalf("a after revoking: epoch %d, %v", ra.MemberEpoch, kerr.ErrorForCode(ra.ErrorCode))
	}
	rb = g.owning("b", 2)
	bGets, _ := g.assigned(rb)
	if rb.ErrorCode != 0 || len(bGets) != 3 || slices.ContainsFunc(bGets, func(p int32) bool { return slices.Contains(aKeeps, p) }) {
		t.Fatalf("b gets %v (a keeps %v): %v", bGets, aKeeps, kerr.ErrorForCode(rb.ErrorCode))
	}
	d := g.describe()
	if d.State != "Stable" || len(d.Members) != 2 || g.member(d, "a").MemberEpoch != 2 || g.member(d, "b").MemberEpoch != 2 {
		t.Fatalf("after reconciling: %s with %d members", d.State, len(d.Members))
	}

	// Epochs: a future epoch is fenced; the previous one is taken from a
	// member whose owned partitions show it missed the last response.
	wantCode(t, "a future epoch", g.owning("a", 5, aKeeps...).ErrorCode, kerr.FencedMemberEpoch)
	if r := g.owning("a", 1, aKeeps...); r.ErrorCode != 0 || r.MemberEpoch != 2 {
		t.Fatalf("a at its previous epoch: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	wantCode(t, "the previous epoch owning what it no longer has", g.owning("a", 1, 0, 1, 2, 3, 4, 5).ErrorCode, kerr.FencedMemberEpoch)
	wantCode(t, "a commits at its previous epoch what it still owns", g.commit(9, "a", 1, aKeeps[0]), nil)
	wantCode(t, "a commits at its previous epoch what it gave up", g.commit(9, "a", 1, bGets[0]), kerr.StaleMemberEpoch)
	wantCode(t, "OffsetFetch at a's epoch", g.fetchOffsets("a", 2), nil)
	wantCode(t, "OffsetFetch at a stale epoch", g.fetchOffsets("a", 1), kerr.StaleMemberEpoch)
	wantCode(t, "OffsetFetch by an unknown member", g.fetchOffsets("zz", 2), kerr.UnknownMemberID)

	// The group is a consumer-protocol group to every other API.
	classic := rawGroup{t: t, cl: cl, ctx: ctx, group: g.group}
	wantCode(t, "a classic JoinGroup of another protocol type", classic.join("", 10000, "connect", "range").ErrorCode, kerr.InconsistentGroupProtocol)
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{g.group}
	if r, err := dg.RequestWith(ctx, cl); err != nil || r.Groups[0].State != "Dead" || r.Groups[0].ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("DescribeGroups of a consumer group: %v %+v", err, r)
	}
	for _, tc := range []struct {
		filter string
		want   bool
	}{{"consumer", true}, {"Consumer", true}, {"classic", false}} {
		lg := kmsg.NewPtrListGroupsRequest()
		lg.TypesFilter = []string{tc.filter}
		r, err := lg.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		found := slices.ContainsFunc(r.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return g.Group == "cgp" && g.GroupType == "consumer" && g.GroupState == "Stable" && g.ProtocolType == "consumer"
		})
		if found != tc.want {
			t.Fatalf("ListGroups with types %q: %+v", tc.filter, r.Groups)
		}
	}

	// C joins with a short rebalance timeout; when a and b do not revoke
	// in time, they are fenced and c ends up with everything.
	rc := g.join("c", 60000, "cg")
	if rc.ErrorCode != 0 || rc.MemberEpoch != 3 {
		t.Fatalf("c joined: epoch %d, %v", rc.MemberEpoch, kerr.ErrorForCode(rc.ErrorCode))
	}
	ra = g.hb("a", 2, func(r *kmsg.ConsumerGroupHeartbeatRequest) {
		r.RebalanceTimeoutMillis = 200
		rt := kmsg.NewConsumerGroupHeartbeatRequestTopic()
		rt.TopicID, rt.Partitions = g.topic, aKeeps
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{rt}
	})
	if ps, _ := g.assigned(ra); ra.ErrorCode != 0 || len(ps) != 2 {
		t.Fatalf("a asked to revoke one: keeps %v, %v", ps, kerr.ErrorForCode(ra.ErrorCode))
	}
	waitFor(t, 10*time.Second, func() bool { return g.member(g.describe(), "a") == nil }, "a is fenced after its rebalance timeout")
	wantCode(t, "a after being fenced", g.owning("a", 2, aKeeps...).ErrorCode, kerr.UnknownMemberID)

	// B leaves: its epoch answer is -1 and the group moves on without it.
	rb = g.hb("b", -1, nil)
	if rb.ErrorCode != 0 || rb.MemberEpoch != -1 {
		t.Fatalf("b leaving: %v epoch %d", kerr.ErrorForCode(rb.ErrorCode), rb.MemberEpoch)
	}
	rc = g.owning("c", 3)
	for range 3 {
		if ps, _ := g.assigned(rc); len(ps) == 6 {
			break
		}
		rc = g.owning("c", rc.MemberEpoch)
	}
	if ps, _ := g.assigned(rc); len(ps) != 6 {
		t.Fatalf("c alone has %v at epoch %d", ps, rc.MemberEpoch)
	}
	cEpoch := rc.MemberEpoch
	cAll, _ := g.assigned(rc)
	g.owning("c", cEpoch, cAll...)

	// Static members: s leaves with -2 and keeps its assignment; its
	// instance comes back under a new member ID and takes it over with
	// no new group epoch; a third member cannot take an instance in use.
	static := func(member string) func(*kmsg.ConsumerGroupHeartbeatRequest) {
		return func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.InstanceID = kmsg.StringPtr("inst-1")
			r.RebalanceTimeoutMillis = 60000
			r.SubscribedTopicNames = []string{"cg"}
			r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
	}
	rs := g.hb("s1", 0, static("s1"))
	if rs.ErrorCode != 0 {
		t.Fatalf("s1 joining: %v", kerr.ErrorForCode(rs.ErrorCode))
	}
	// c revokes what s1 is to get, then s1 picks it up.
	rc = g.owning("c", cEpoch, cAll...)
	cKeeps, _ := g.assigned(rc)
	rc = g.owning("c", cEpoch, cKeeps...)
	rs = g.owning("s1", rs.MemberEpoch)
	sHas, _ := g.assigned(rs)
	if len(sHas) != 3 || len(cKeeps) != 3 {
		t.Fatalf("s1 has %v, c keeps %v", sHas, cKeeps)
	}
	g.owning("s1", rs.MemberEpoch, sHas...)
	epochBefore := g.describe().Epoch
	if r := g.hb("s1", -2, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = kmsg.StringPtr("inst-1") }); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("s1's static leave: %v epoch %d", kerr.ErrorForCode(r.ErrorCode), r.MemberEpoch)
	}
	if m := g.member(g.describe(), "s1"); m == nil || m.MemberEpoch != -2 || len(m.Assignment.TopicPartitions) == 0 {
		t.Fatalf("s1 after its static leave: %+v", m)
	}
	rs = g.hb("s2", 0, static("s2"))
	got, _ := g.assigned(rs)
	if rs.ErrorCode != 0 || !slices.Equal(got, sHas) || g.describe().Epoch != epochBefore {
		t.Fatalf("s2 taking over inst-1: %v, has %v (s1 had %v), group epoch %d (was %d)", kerr.ErrorForCode(rs.ErrorCode), got, sHas, g.describe().Epoch, epochBefore)
	}
	wantCode(t, "a third member with inst-1", g.hb("s3", 0, static("s3")).ErrorCode, kerr.UnreleasedInstanceID)
	wantCode(t, "s2 with another instance", g.hb("s2", rs.MemberEpoch, func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.InstanceID = kmsg.StringPtr("inst-2") }).ErrorCode, kerr.FencedInstanceID)
}

// An empty classic group becomes a consumer-protocol group when a
// consumer-protocol member joins, and back when a classic member joins it
// empty; committed offsets stay. A classic group with members that is not
// Stable refuses consumer-protocol members.
func TestConsumerGroupConvertsEmptyGroups(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(consumerGroups)
	createTopic(t, c, "t", 2, nil)
	cl := c.client()
	ctx := testCtx(t)
	classic := rawGroup{t: t, cl: cl, ctx: ctx, group: "conv"}
	cg := rawConsumerGroup{t: t, cl: cl, ctx: ctx, group: "conv"}

	// A classic member joins (and so holds the group).
	j := classic.join("", 10000, "consumer", "range")
	j = classic.join(j.MemberID, 10000, "consumer", "range")
	wantCode(t, "classic join", j.ErrorCode, nil)
	wantCode(t, "a consumer-protocol member joining a classic group that is not Stable", cg.join("m", 1000, "t").ErrorCode, kerr.GroupIDNotFound)
	classic.sync(j.MemberID, j.Generation, "range", map[string][]byte{j.MemberID: nil})
	wantCode(t, "classic commit", classic.commit(j.MemberID, j.Generation, "t", 0)[0], nil)
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "conv"
	lm := kmsg.NewLeaveGroupRequestMember()
	lm.MemberID = j.MemberID
	leave.Members = append(leave.Members, lm)
	if _, err := leave.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}

	// Empty: a consumer-protocol member takes it over; the offset stays.
	r := cg.join("m", 1000, "t")
	if r.ErrorCode != 0 || r.MemberEpoch < 1 {
		t.Fatalf("joining the empty classic group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	offsets, err := c.admin().FetchOffsets(ctx, "conv")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offsets.Lookup("t", 0); !ok || o.At != 1 {
		t.Fatalf("the classic group's offset after the change: %+v", o)
	}
	if r := cg.hb("m", -1, nil); r.ErrorCode != 0 {
		t.Fatalf("leaving: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// Empty again: a classic member takes it back.
	j = classic.join("", 10000, "consumer", "range")
	j = classic.join(j.MemberID, 10000, "consumer", "range")
	wantCode(t, "classic join of the empty consumer-protocol group", j.ErrorCode, nil)
}

// The migration policy decides which live groups change protocol: with
// upgrades disabled a classic group with members refuses consumer-protocol
// members; with downgrades disabled a consumer-protocol group keeps its
// protocol when only classic members are left, serving them from the
// server's assignment.
func TestConsumerGroupMigrationPolicy(t *testing.T) {
	for _, policy := range []string{agent.MigrationDisabled, agent.MigrationUpgrade} {
		t.Run(policy, func(t *testing.T) {
			c := newTestCluster(t)
			c.addAgent(func(cfg *agent.Config) {
				consumerGroups(cfg)
				cfg.Groups.ConsumerMigrationPolicy = policy
			})
			createTopic(t, c, "t", 4, nil)
			cl := c.client()
			ctx := testCtx(t)
			classic := rawGroup{t: t, cl: cl, ctx: ctx, group: "pol"}
			cg := rawConsumerGroup{t: t, cl: cl, ctx: ctx, group: "pol", topic: topicID(t, cl, "t")}
			j := classic.join("", 10000, "consumer", "range")
			j = classic.join(j.MemberID, 10000, "consumer", "range")
			wantCode(t, "classic join", j.ErrorCode, nil)
			wantCode(t, "classic sync", classic.sync(j.MemberID, j.Generation, "range", map[string][]byte{j.MemberID: nil}).ErrorCode, nil)

			r := cg.join("n", 60000, "t")
			if policy == agent.MigrationDisabled {
				wantCode(t, "a consumer-protocol member joining a live classic group", r.ErrorCode, kerr.GroupIDNotFound)
				wantCode(t, "the classic member's heartbeat", classic.heartbeat(j.MemberID, j.Generation), nil)
				return
			}
			wantCode(t, "a consumer-protocol member upgrading the group", r.ErrorCode, nil)
			d := cg.describe()
			if d.ErrorCode != 0 || len(d.Members) != 2 {
				t.Fatalf("after the upgrade: %v, %d members", kerr.ErrorForCode(d.ErrorCode), len(d.Members))
			}
			// The classic member is told to rejoin, and is served the
			// server's assignment.
			wantCode(t, "the classic member's heartbeat after the upgrade", classic.heartbeat(j.MemberID, j.Generation), kerr.RebalanceInProgress)
			if r := cg.hb("n", -1, nil); r.ErrorCode != 0 {
				t.Fatalf("n leaving: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			// Downgrades are off: still a consumer-protocol group.
			if d := cg.describe(); d.ErrorCode != 0 || len(d.Members) != 1 || d.Members[0].MemberType != 0 {
				t.Fatalf("after the consumer-protocol member left: %v, %+v", kerr.ErrorForCode(d.ErrorCode), d.Members)
			}
			j2 := classic.join(j.MemberID, 10000, "consumer", "range")
			if j2.ErrorCode != 0 || j2.LeaderID != "" {
				t.Fatalf("the classic member rejoining: %v, leader %q", kerr.ErrorForCode(j2.ErrorCode), j2.LeaderID)
			}
			s := classic.sync(j.MemberID, j2.Generation, "range", nil)
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(s.MemberAssignment); s.ErrorCode != 0 || err != nil {
				t.Fatalf("sync: %v, %v", kerr.ErrorForCode(s.ErrorCode), err)
			}
			n := 0
			for _, at := range a.Topics {
				n += len(at.Partitions)
			}
			if n != 4 {
				t.Fatalf("the classic member is assigned %+v, want all 4 partitions", a.Topics)
			}
			wantCode(t, "the classic member's heartbeat once it has everything", classic.heartbeat(j.MemberID, j2.Generation), nil)
			wantCode(t, "its commit at its epoch", classic.commit(j.MemberID, j2.Generation, "t", 0)[0], nil)
			wantCode(t, "its commit at another epoch", classic.commit(j.MemberID, j2.Generation+5, "t", 0)[0], kerr.IllegalGeneration)
		})
	}
}

// Group configs set a consumer-protocol group's heartbeat interval and
// session timeout within the agents' bounds, and are described with their
// source.
func TestConsumerGroupConfigs(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) {
		consumerGroups(cfg)
		cfg.Groups.ConsumerMaxHeartbeatInterval = 2 * time.Second
	})
	createTopic(t, c, "t", 2, nil)
	cl := c.client()
	ctx := testCtx(t)
	alter := func(op kmsg.IncrementalAlterConfigOp, name, value string) error {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "cfg"
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Op, rc.Name, rc.Value = op, name, &value
		rr.Configs = append(rr.Configs, rc)
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Resources[0].ErrorCode)
	}
	type described struct {
		value  string
		source kmsg.ConfigSource
	}
	describe := func() map[string]described {
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeGroupConfig, "cfg"
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
			t.Fatalf("describing group configs: %v %+v", err, resp)
		}
		out := map[string]described{}
		for _, c := range resp.Resources[0].Configs {
			out[c.Name] = described{*c.Value, c.Source}
		}
		return out
	}
	if d := describe()["consumer.heartbeat.interval.ms"]; d.value != "100" || d.source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("default heartbeat interval: %+v", d)
	}
	if err := alter(kmsg.IncrementalAlterConfigOpSet, "consumer.heartbeat.interval.ms", "5000"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("a heartbeat interval above the max: %v", err)
	}
	if err := alter(kmsg.IncrementalAlterConfigOpSet, "consumer.nope.ms", "5"); !errors.Is(err, kerr.InvalidConfig) {
		t.Fatalf("an unknown group config: %v", err)
	}
	if err := alter(kmsg.IncrementalAlterConfigOpSet, "consumer.heartbeat.interval.ms", "1500"); err != nil {
		t.Fatal(err)
	}
	if d := describe()["consumer.heartbeat.interval.ms"]; d.value != "1500" || d.source != kmsg.ConfigSourceGroupConfig {
		t.Fatalf("set heartbeat interval: %+v", d)
	}
	g := rawConsumerGroup{t: t, cl: cl, ctx: ctx, group: "cfg"}
	if r := g.join("m", 60000, "t"); r.ErrorCode != 0 || r.HeartbeatIntervalMillis != 1500 {
		t.Fatalf("join: %v, heartbeat interval %d", kerr.ErrorForCode(r.ErrorCode), r.HeartbeatIntervalMillis)
	}
	if err := alter(kmsg.IncrementalAlterConfigOpDelete, "consumer.heartbeat.interval.ms", ""); err != nil {
		t.Fatal(err)
	}
	if r := g.owning("m", 1, 0, 1); r.ErrorCode != 0 || r.HeartbeatIntervalMillis != 100 {
		t.Fatalf("after the delete: %v, heartbeat interval %d", kerr.ErrorForCode(r.ErrorCode), r.HeartbeatIntervalMillis)
	}
}

// A consumer-protocol group refuses new members past group.consumer.max.size
// and before its state would outgrow what etcd takes in one request.
func TestConsumerGroupMaxSize(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) {
		consumerGroups(cfg)
		cfg.EtcdMaxRequestBytes = 256 << 10
	})
	createTopic(t, c, "t", 8, nil)
	cl := c.client()
	g := rawConsumerGroup{t: t, cl: cl, ctx: testCtx(t), group: "big"}
	joined := 0
	for i := range 1000 {
		r := g.join(fmt.Sprintf("member-%04d", i), 60000, "t")
		if r.ErrorCode == kerr.GroupMaxSizeReached.Code {
			break
		}
		if r.ErrorCode != 0 {
			t.Fatalf("member %d: %v", i, kerr.ErrorForCode(r.ErrorCode))
		}
		joined++
	}
	// 128 KiB of state at under 300 bytes a member.
	if joined < 300 || joined >= 1000 {
		t.Fatalf("%d members joined before the group was full", joined)
	}
	if d := g.describe(); d.ErrorCode != 0 || len(d.Members) != joined {
		t.Fatalf("the full group: %v, %d members, %d joined", kerr.ErrorForCode(d.ErrorCode), len(d.Members), joined)
	}
	// The estimate that refused the next member is generous but not
	// wasteful: the value written is within the half of the limit a group
	// may take, and uses more than half of that.
	kv, err := c.store.Client().Get(g.ctx, c.store.Root()+"groups/big")
	if err != nil || len(kv.Kvs) != 1 || len(kv.Kvs[0].Value) > 128<<10 || len(kv.Kvs[0].Value) < 64<<10 {
		t.Fatalf("the group's value: %v, %d bytes", err, len(kv.Kvs[0].Value))
	}
	t.Logf("%d members fit in a 256 KiB etcd request limit; the value takes %d bytes", joined, len(kv.Kvs[0].Value))
}
