package agent_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func consumerMetadata(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Topics = topics
	return m.AppendTo(nil)
}

// rawGroup sends group requests for one group through a franz-go client,
// which routes them to the coordinator.
type rawGroup struct {
	t     *testing.T
	cl    *kgo.Client
	ctx   context.Context
	group string
}

func (g rawGroup) join(memberID string, sessionMs int32, protocolType string, protocols ...string) *kmsg.JoinGroupResponse {
	g.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = g.group
	req.SessionTimeoutMillis = sessionMs
	req.RebalanceTimeoutMillis = 2000
	req.MemberID = memberID
	req.ProtocolType = protocolType
	for _, p := range protocols {
		jp := kmsg.NewJoinGroupRequestProtocol()
		jp.Name = p
		jp.Metadata = consumerMetadata("t")
		req.Protocols = append(req.Protocols, jp)
	}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("JoinGroup: %v", err)
	}
	return resp
}

func (g rawGroup) sync(memberID string, generation int32, protocol string, assign map[string][]byte) *kmsg.SyncGroupResponse {
	g.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group = g.group
	req.MemberID = memberID
	req.Generation = generation
	req.ProtocolType = kmsg.StringPtr("consumer")
	req.Protocol = kmsg.StringPtr(protocol)
	for id, a := range assign {
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = id
		sa.MemberAssignment = a
		req.GroupAssignment = append(req.GroupAssignment, sa)
	}
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("SyncGroup: %v", err)
	}
	return resp
}

func (g rawGroup) heartbeat(memberID string, generation int32) int16 {
	g.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group = g.group
	req.MemberID = memberID
	req.Generation = generation
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("Heartbeat: %v", err)
	}
	return resp.ErrorCode
}

// commit commits offset 1 for each partition of topic t and returns the
// per-partition codes.
func (g rawGroup) commit(memberID string, generation int32, topic string, partitions ...int32) []int16 {
	g.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = g.group
	req.MemberID = memberID
	req.Generation = generation
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = topic, topicID(g.t, g.cl, topic)
	for _, p := range partitions {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = p
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(g.ctx, g.cl)
	if err != nil {
		g.t.Fatalf("OffsetCommit: %v", err)
	}
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if want == nil && got != 0 || want != nil && got != want.Code {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestGroupProtocolErrors(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "t", 2, nil)
	g := rawGroup{t: t, cl: c.client(), ctx: testCtx(t), group: "raw"}

	// Asking about a group that does not exist leaves no claim behind.
	wantCode(t, "heartbeat to a group that does not exist", rawGroup{t: t, cl: g.cl, ctx: g.ctx, group: "ghost"}.heartbeat("m", 1), kerr.UnknownMemberID)
	claims, err := c.store.Client().Get(g.ctx, c.store.Root()+"group-owners/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || claims.Count != 0 {
		t.Fatalf("%d claims left after asking about a missing group (%v)", claims.Count, err)
	}

	wantCode(t, "session timeout above the maximum", g.join("", 31*60*1000, "consumer", "range").ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "no protocols", g.join("", 1000, "consumer").ErrorCode, kerr.InconsistentGroupProtocol)

	// v4+: the first join gets a member ID to join with.
	r := g.join("", 1000, "consumer", "range", "roundrobin")
	wantCode(t, "first join", r.ErrorCode, kerr.MemberIDRequired)
	leader := r.MemberID
	if leader == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member ID")
	}
	wantCode(t, "join with an unknown member ID", g.join("nobody", 1000, "consumer", "range").ErrorCode, kerr.UnknownMemberID)
	r = g.join(leader, 1000, "consumer", "range", "roundrobin")
	wantCode(t, "second join", r.ErrorCode, nil)
	if r.Generation != 1 || r.LeaderID != leader || r.MemberID != leader || len(r.Members) != 1 || *r.Protocol != "range" {
		t.Fatalf("join response %+v", r)
	}
	gen := r.Generation

	// Members must share a protocol and the protocol type.
	wantCode(t, "join without a common protocol", g.join("", 1000, "consumer", "sticky").ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "join with another protocol type", g.join("", 1000, "connect", "range").ErrorCode, kerr.InconsistentGroupProtocol)

	wantCode(t, "heartbeat before sync", g.heartbeat(leader, gen), nil)
	wantCode(t, "commit while waiting for sync", g.commit(leader, gen, "t", 0)[0], kerr.RebalanceInProgress)
	wantCode(t, "sync with the wrong protocol", g.sync(leader, gen, "roundrobin", nil).ErrorCode, kerr.InconsistentGroupProtocol)
	wantCode(t, "sync with the wrong generation", g.sync(leader, gen+1, "range", nil).ErrorCode, kerr.IllegalGeneration)
	assignment := []byte("assignment")
	s := g.sync(leader, gen, "range", map[string][]byte{leader: assignment})
	wantCode(t, "leader sync", s.ErrorCode, nil)
	if string(s.MemberAssignment) != "assignment" {
		t.Fatalf("assignment %q", s.MemberAssignment)
	}

	wantCode(t, "heartbeat", g.heartbeat(leader, gen), nil)
	wantCode(t, "heartbeat with an old generation", g.heartbeat(leader, gen-1), kerr.IllegalGeneration)
	wantCode(t, "heartbeat of an unknown member", g.heartbeat("nobody", gen), kerr.UnknownMemberID)

	wantCode(t, "commit", g.commit(leader, gen, "t", 0)[0], nil)
	wantCode(t, "commit with an old generation", g.commit(leader, gen-1, "t", 0)[0], kerr.IllegalGeneration)
	wantCode(t, "commit by an unknown member", g.commit("nobody", gen, "t", 0)[0], kerr.UnknownMemberID)
	wantCode(t, "simple commit to a group with members", g.commit("", -1, "t", 0)[0], kerr.UnknownMemberID)
	// OffsetCommit v10 names topics by ID.
	wantCode(t, "commit to an unknown topic", g.commit(leader, gen, "nope", 0)[0], kerr.UnknownTopicID)
	codes := g.commit(leader, gen, "t", 1, 2)
	wantCode(t, "commit to partition 1", codes[0], nil)
	wantCode(t, "commit to a partition that does not exist", codes[1], kerr.UnknownTopicOrPartition)

	// A second member joining sends the group back to rebalancing; the
	// leader learns through its heartbeat.
	r2 := g.join("", 1000, "consumer", "roundrobin", "range")
	wantCode(t, "second member's first join", r2.ErrorCode, kerr.MemberIDRequired)
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { joined <- g.join(r2.MemberID, 1000, "consumer", "roundrobin", "range") }()
	waitUntil(t, func() bool { return g.heartbeat(leader, gen) == kerr.RebalanceInProgress.Code }, "the leader's heartbeat says rebalance")
	r = g.join(leader, 1000, "consumer", "range", "roundrobin")
	r2 = <-joined
	wantCode(t, "leader rejoin", r.ErrorCode, nil)
	wantCode(t, "second member join", r2.ErrorCode, nil)
	if r.Generation != gen+1 || r2.Generation != gen+1 || r.LeaderID != leader || len(r.Members) != 2 || len(r2.Members) != 0 {
		t.Fatalf("after rebalance: leader %+v, follower %+v", r, r2)
	}
	// Votes: one prefers range, one roundrobin; the tie goes to the
	// longest-standing member's choice.
	if *r.Protocol != "range" || *r2.Protocol != "range" {
		t.Fatalf("protocol %q / %q, want range", *r.Protocol, *r2.Protocol)
	}
	// Until the leader syncs, commits wait for the rebalance; then the
	// old generation is refused.
	wantCode(t, "commit while waiting for sync", g.commit(leader, gen, "t", 0)[0], kerr.RebalanceInProgress)
	wantCode(t, "leader sync", g.sync(leader, gen+1, "range", map[string][]byte{leader: []byte("a"), r2.MemberID: []byte("b")}).ErrorCode, nil)
	s = g.sync(r2.MemberID, gen+1, "range", nil)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "b" {
		t.Fatalf("follower sync: %v %q", kerr.ErrorForCode(s.ErrorCode), s.MemberAssignment)
	}
	wantCode(t, "commit with the previous generation", g.commit(leader, gen, "t", 0)[0], kerr.IllegalGeneration)
	wantCode(t, "commit with the current generation", g.commit(r2.MemberID, gen+1, "t", 0)[0], nil)

	// Both leave in one batch; the group is empty and takes simple
	// commits.
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "raw"
	for _, id := range []string{leader, r2.MemberID, "nobody"} {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = id
		leave.Members = append(leave.Members, m)
	}
	lr, err := leave.RequestWith(g.ctx, g.cl)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "leave", lr.ErrorCode, nil)
	wantCode(t, "leave leader", lr.Members[0].ErrorCode, nil)
	wantCode(t, "leave follower", lr.Members[1].ErrorCode, nil)
	wantCode(t, "leave unknown", lr.Members[2].ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "heartbeat after leaving", g.heartbeat(leader, gen+1), kerr.UnknownMemberID)
	wantCode(t, "simple commit to the empty group", g.commit("", -1, "t", 0)[0], nil)

	// A transactional ID's coordinator is an agent; share-group keys are
	// not served.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorType = 1
	fc.CoordinatorKeys = []string{"txn"}
	fr, err := fc.RequestWith(g.ctx, g.cl)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "transaction coordinator", fr.Coordinators[0].ErrorCode, nil)
	if fr.Coordinators[0].NodeID < 0 {
		t.Fatalf("transaction coordinator: node %d", fr.Coordinators[0].NodeID)
	}
	fc.CoordinatorType = 2
	if fr, err = fc.RequestWith(g.ctx, g.cl); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "share coordinator", fr.Coordinators[0].ErrorCode, kerr.InvalidRequest)
}

func TestStaticMembersAreFenced(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "t", 1, nil)
	g := rawGroup{t: t, cl: c.client(), ctx: testCtx(t), group: "static"}
	join := func(memberID string) *kmsg.JoinGroupResponse {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = g.group
		req.SessionTimeoutMillis = 5000
		req.RebalanceTimeoutMillis = 2000
		req.MemberID = memberID
		req.InstanceID = kmsg.StringPtr("instance-1")
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		p.Metadata = consumerMetadata("t")
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(g.ctx, g.cl)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Static members join without MEMBER_ID_REQUIRED.
	r := join("")
	wantCode(t, "static join", r.ErrorCode, nil)
	first := r.MemberID
	wantCode(t, "sync", g.sync(first, r.Generation, "range", map[string][]byte{first: []byte("a1")}).ErrorCode, nil)

	// The instance restarts: a new member ID, the same generation and
	// assignment, no rebalance.
	r2 := join("")
	wantCode(t, "static rejoin", r2.ErrorCode, nil)
	if r2.MemberID == first || r2.Generation != r.Generation || !r2.SkipAssignment {
		t.Fatalf("rejoin %+v, first member %s generation %d", r2, first, r.Generation)
	}
	s := g.sync(r2.MemberID, r2.Generation, "range", nil)
	if s.ErrorCode != 0 || string(s.MemberAssignment) != "a1" {
		t.Fatalf("sync after restart: %v %q", kerr.ErrorForCode(s.ErrorCode), s.MemberAssignment)
	}

	// The old incarnation is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = g.group
	hb.MemberID = first
	hb.InstanceID = kmsg.StringPtr("instance-1")
	hb.Generation = r.Generation
	hr, err := hb.RequestWith(g.ctx, g.cl)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "old incarnation's heartbeat", hr.ErrorCode, kerr.FencedInstanceID)
	wantCode(t, "old incarnation's join", join(first).ErrorCode, kerr.FencedInstanceID)
}

func TestFindCoordinatorIsStableAcrossAgents(t *testing.T) {
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	a0 := c.addAgent(fastGroups)
	a1 := c.addAgent(fastGroups)
	ctx := testCtx(t)
	ask := func(addr string, keys ...string) map[string]int32 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKeys = keys
		resp, err := req.RequestWith(ctx, c.clientAt(addr))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int32{}
		for _, co := range resp.Coordinators {
			if co.ErrorCode != 0 {
				t.Fatalf("%s: %v", co.Key, kerr.ErrorForCode(co.ErrorCode))
			}
			out[co.Key] = co.NodeID
		}
		return out
	}
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	var first, second map[string]int32
	waitUntil(t, func() bool {
		first, second = ask(a0.Addr(), keys...), ask(a1.Addr(), keys...)
		nodes := map[int32]bool{}
		for _, k := range keys {
			if first[k] != second[k] {
				return false
			}
			nodes[first[k]] = true
		}
		return len(nodes) == 2
	}, "both agents agree on coordinators spread over both")

	// Any group request sent to the wrong agent gets NOT_COORDINATOR.
	var wrong string
	for _, k := range keys {
		if first[k] != a0.NodeID() {
			wrong = k
			break
		}
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = wrong
	hb.MemberID = "m"
	rc := dialRaw(t, plainAddr(a0))
	hb.Version = 0
	rc.send(hb, 1)
	_, body, err := rc.read()
	if err != nil {
		t.Fatal(err)
	}
	hr := kmsg.NewPtrHeartbeatResponse()
	if err := hr.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(hr.ErrorCode); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatalf("heartbeat at the wrong agent: %v", err)
	}
}

// TestOldestGroupVersions drives a group through the versions librdkafka
// 2.0 needs at the floor: FindCoordinator v0, JoinGroup, SyncGroup,
// Heartbeat and LeaveGroup v0, OffsetCommit v1 and v2, OffsetFetch v1.
func TestOldestGroupVersions(t *testing.T) {
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	a := c.addAgent(fastGroups)
	createTopic(t, c, "t", 2, nil)
	rc := dialRaw(t, plainAddr(a))
	corr := int32(0)
	roundTrip := func(req kmsg.Request, version int16) kmsg.Response {
		t.Helper()
		req.SetVersion(version)
		corr++
		rc.send(req, corr)
		got, body, err := rc.read()
		if err != nil || got != corr {
			t.Fatalf("%s v%d: corr %d err %v", kmsg.NameForKey(req.Key()), version, got, err)
		}
		resp := req.ResponseKind()
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("decoding %s v%d: %v", kmsg.NameForKey(req.Key()), version, err)
		}
		return resp
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "old"
	fr := roundTrip(fc, 0).(*kmsg.FindCoordinatorResponse)
	if fr.ErrorCode != 0 || fr.NodeID != a.NodeID() || fr.Port == 0 {
		t.Fatalf("FindCoordinator v0: %+v", fr)
	}

	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = "old"
	join.SessionTimeoutMillis = 6000
	join.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = consumerMetadata("t")
	join.Protocols = append(join.Protocols, p)
	jr := roundTrip(join, 0).(*kmsg.JoinGroupResponse)
	if jr.ErrorCode != 0 || jr.Generation != 1 || jr.MemberID == "" || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 {
		t.Fatalf("JoinGroup v0 (no MEMBER_ID_REQUIRED before v4): %+v", jr)
	}
	member := jr.MemberID

	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group = "old"
	sync.MemberID = member
	sync.Generation = 1
	sa := kmsg.NewSyncGroupRequestGroupAssignment()
	sa.MemberID = member
	sa.MemberAssignment = []byte{0, 0, 0, 0, 0, 0, 0, 0}
	sync.GroupAssignment = append(sync.GroupAssignment, sa)
	if sr := roundTrip(sync, 0).(*kmsg.SyncGroupResponse); sr.ErrorCode != 0 || len(sr.MemberAssignment) != 8 {
		t.Fatalf("SyncGroup v0: %+v", sr)
	}

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group = "old"
	hb.MemberID = member
	hb.Generation = 1
	wantCode(t, "Heartbeat v0", roundTrip(hb, 0).(*kmsg.HeartbeatResponse).ErrorCode, nil)

	for _, v := range []int16{1, 2} {
		oc := kmsg.NewPtrOffsetCommitRequest()
		oc.Group = "old"
		oc.MemberID = member
		oc.Generation = 1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition = int32(v - 1)
		rp.Offset = int64(10 * v)
		rp.Metadata = kmsg.StringPtr("meta")
		rt.Partitions = append(rt.Partitions, rp)
		oc.Topics = append(oc.Topics, rt)
		or := roundTrip(oc, v).(*kmsg.OffsetCommitResponse)
		wantCode(t, "OffsetCommit", or.Topics[0].Partitions[0].ErrorCode, nil)
	}

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "old"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic = "t"
	ft.Partitions = []int32{0, 1}
	of.Topics = append(of.Topics, ft)
	ofr := roundTrip(of, 1).(*kmsg.OffsetFetchResponse)
	if len(ofr.Topics) != 1 || len(ofr.Topics[0].Partitions) != 2 {
		t.Fatalf("OffsetFetch v1: %+v", ofr)
	}
	for i, want := range []int64{10, 20} {
		got := ofr.Topics[0].Partitions[i]
		if got.ErrorCode != 0 || got.Offset != want || got.Metadata == nil || *got.Metadata != "meta" {
			t.Fatalf("OffsetFetch v1 partition %d: %+v", i, got)
		}
	}

	lg := kmsg.NewPtrListGroupsRequest()
	if lr := roundTrip(lg, 0).(*kmsg.ListGroupsResponse); len(lr.Groups) != 1 || lr.Groups[0].Group != "old" || lr.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("ListGroups v0: %+v", lr)
	}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"old"}
	if dr := roundTrip(dg, 0).(*kmsg.DescribeGroupsResponse); len(dr.Groups) != 1 || dr.Groups[0].State != "Stable" || len(dr.Groups[0].Members) != 1 || len(dr.Groups[0].Members[0].MemberAssignment) != 8 {
		t.Fatalf("DescribeGroups v0: %+v", dr)
	}

	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "old"
	leave.MemberID = member
	wantCode(t, "LeaveGroup v0", roundTrip(leave, 0).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	wantCode(t, "Heartbeat after leaving", roundTrip(hb, 0).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)
}

// TestShutdownAnswersParkedRequests checks that a JoinGroup parked in a
// rebalance is answered NOT_COORDINATOR when its agent shuts down, that
// shutdown does not wait for the rebalance, and that no goroutine of the
// group coordinator outlives the agent.
func TestShutdownAnswersParkedRequests(t *testing.T) {
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	a := c.addAgent(fastGroups)
	createTopic(t, c, "t", 1, nil)
	g := rawGroup{t: t, cl: c.client(), ctx: testCtx(t), group: "parked"}
	r := g.join("", 10000, "consumer", "range")
	r = g.join(r.MemberID, 10000, "consumer", "range")
	wantCode(t, "first member", r.ErrorCode, nil)
	wantCode(t, "sync", g.sync(r.MemberID, r.Generation, "range", nil).ErrorCode, nil)

	// A second member's join parks: the first member has up to the 2s
	// rebalance timeout to rejoin.
	rc := dialRaw(t, plainAddr(a))
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 3
	join.Group = "parked"
	join.SessionTimeoutMillis = 10000
	join.RebalanceTimeoutMillis = 60000
	join.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = consumerMetadata("t")
	join.Protocols = append(join.Protocols, p)
	rc.send(join, 1)
	waitUntil(t, func() bool { return g.heartbeat(r.MemberID, r.Generation) == kerr.RebalanceInProgress.Code }, "the group is rebalancing")

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("shutdown took %s", took)
	}
	_, body, err := rc.read()
	if err != nil {
		t.Fatalf("parked join not answered: %v", err)
	}
	jr := kmsg.NewPtrJoinGroupResponse()
	jr.Version = 3
	if err := jr.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "parked join at shutdown", jr.ErrorCode, kerr.NotCoordinator)

	waitUntil(t, func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		for _, fn := range []string{"agent.(*groupCoordinator)", "agent.(*group)", "agent.serveParked"} {
			if strings.Contains(stacks, fn) {
				return false
			}
		}
		return true
	}, "no group coordinator goroutine is left")
}
