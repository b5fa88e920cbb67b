package agent

// One consumer group's classic-protocol state machine, as Kafka's
// GroupCoordinator runs it:
//
//	Empty --join--> PreparingRebalance --all joined or rebalance timeout-->
//	CompletingRebalance --leader's SyncGroup--> Stable
//
// and back to PreparingRebalance when a member joins, changes its
// subscription, leaves, misses its session timeout, or does not SyncGroup
// within the rebalance timeout. A rebalance that ends with no members
// leaves the group Empty. Dead groups are not kept: a deleted group is
// dropped from memory and etcd.
//
// JoinGroup and SyncGroup park until the group decides; their handlers
// wait on a waiter's channel from a goroutine the connection owns, so the
// connection's other requests keep flowing. Every parked request is
// answered exactly once: by the transition it waits for, or with an error
// when its member is removed or the group is dropped.
//
// The state is persisted (metadata.SaveGroup, fenced by the group's claim)
// at every transition and membership change before any client hears of
// it. If a write fails, the group is dropped from memory and its parked
// requests get NOT_COORDINATOR; the next request loads it again from the
// last state written.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// consumerProtocolType is the protocol type of Kafka consumers, whose
// member metadata names the subscribed topics.
const consumerProtocolType = "consumer"

// emptyConsumerAssignment is an encoded empty ConsumerMemberAssignment,
// sent to consumer-protocol members the leader assigned nothing, since
// some clients cannot decode zero bytes.
var emptyConsumerAssignment = func() []byte {
	var a kmsg.ConsumerMemberAssignment
	return a.AppendTo(nil)
}()

// waiter is a parked JoinGroup or SyncGroup.
type waiter struct {
	req kmsg.Request
	ch  chan kmsg.Response // buffered: answering never blocks
}

func newWaiter(req kmsg.Request) *waiter {
	return &waiter{req: req, ch: make(chan kmsg.Response, 1)}
}

func (w *waiter) reply(resp kmsg.Response) {
	select {
	case w.ch <- resp:
	default:
	}
}

// fail answers the parked request with an error code.
func (w *waiter) fail(code *kerr.Error) {
	resp := w.req.ResponseKind()
	switch r := resp.(type) {
	case *kmsg.JoinGroupResponse:
		r.ErrorCode = code.Code
		r.Generation = -1
		r.MemberID = w.req.(*kmsg.JoinGroupRequest).MemberID
		r.Protocol = kmsg.StringPtr("")
	case *kmsg.SyncGroupResponse:
		r.ErrorCode = code.Code
	}
	w.reply(resp)
}

type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	session    time.Duration
	rebalance  time.Duration
	protocols  []metadata.GroupProtocol
	assignment []byte
	order      uint64 // join order; the longest-standing member leads

	join *waiter // parked JoinGroup
	sync *waiter // parked SyncGroup

	timer    *time.Timer // session expiry
	timerSeq uint64
}

func (m *member) metadataFor(protocol string) ([]byte, bool) {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata, true
		}
	}
	return nil, false
}

func (m *member) sameProtocols(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(m.protocols) != len(ps) {
		return false
	}
	for i, p := range ps {
		if m.protocols[i].Name != p.Name || !bytes.Equal(m.protocols[i].Metadata, p.Metadata) {
			return false
		}
	}
	return true
}

func (m *member) persisted() metadata.GroupMember {
	return metadata.GroupMember{
		MemberID:           m.id,
		InstanceID:         m.instanceID,
		ClientID:           m.clientID,
		ClientHost:         m.clientHost,
		SessionTimeoutMs:   int32(m.session.Milliseconds()),
		RebalanceTimeoutMs: int32(m.rebalance.Milliseconds()),
		Protocols:          m.protocols,
		Assignment:         m.assignment,
	}
}

type group struct {
	gc   *groupCoordinator
	name string

	mu        sync.Mutex // guards everything below
	loaded    bool       // counted in metrics
	gone      bool       // dropped from the coordinator; reload to use
	claim     metadata.GroupClaim
	persisted bool      // the group's state key exists
	reemitted time.Time // last written whole to __consumer_offsets

	state        string
	stateSince   time.Time
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string      // instance ID -> member ID
	pending      map[string]*time.Timer // member IDs handed out with MEMBER_ID_REQUIRED
	pendingSync  map[string]bool        // members yet to SyncGroup this generation
	nextOrder    uint64

	// timeouts are the group's consumer-protocol heartbeat interval and
	// session timeout (group_configs.go).
	timeouts groupTimeouts

	// consumer is the state of a consumer-protocol (KIP-848) group; nil
	// for a classic group. A consumer-protocol group has no classic
	// members, so the fields above keep their Empty values.
	consumer *consumerGroup

	joinTimer        *time.Timer // deadline of the join barrier
	joinSeq          uint64
	syncTimer        *time.Timer // deadline for members to SyncGroup
	syncSeq          uint64
	initialDelay     bool // the barrier is the initial delayed join of an empty group
	initialRemaining time.Duration
	newMemberAdded   bool
	rebalanceStart   time.Time
}

func newGroup(gc *groupCoordinator, name string) *group {
	return &group{
		gc:      gc,
		name:    name,
		state:   metadata.GroupEmpty,
		members: map[string]*member{},
		static:  map[string]string{},
		pending: map[string]*time.Timer{},
	}
}

// loadLocked claims the group and restores its persisted state.
func (g *group) loadLocked(ctx context.Context, reg *metadata.Registration) error {
	gc := g.gc
	info := reg.Info()
	claim, st, found, err := gc.a.store.ClaimGroup(ctx, g.name, metadata.GroupOwner{NodeID: info.NodeID, AgentID: info.AgentID}, reg.Lease())
	if errors.Is(err, metadata.ErrGroupOwned) {
		return kafkaErrorf(kerr.CoordinatorLoadInProgress, "group %q is still held by its previous coordinator; retry: %v", g.name, err)
	}
	if err != nil {
		gc.log.Warn("claiming group failed", "group", g.name, "err", err)
		return kafkaErrorf(kerr.CoordinatorNotAvailable, "claiming group %q: %v", g.name, err)
	}
	g.claim = claim
	g.persisted = found
	g.state = st.State
	g.stateSince = time.UnixMilli(st.StateSince)
	if !found {
		g.stateSince = time.Now()
	}
	if st.Type == metadata.GroupTypeConsumer {
		g.consumer = loadConsumerGroup(st.Consumer)
		g.protocolType = st.ProtocolType
		g.loaded = true
		gc.metrics.groups.WithLabelValues(g.state).Inc()
		g.restoreConsumerTimersLocked()
		gc.log.Info("consumer-protocol group loaded", "group", g.name, "state", g.state, "epoch", g.consumer.epoch, "members", len(g.consumer.members))
		g.reemitLocked(ctx)
		return nil
	}
	g.generation = st.Generation
	g.protocolType = st.ProtocolType
	g.protocol = st.Protocol
	g.leader = st.Leader
	for _, pm := range st.Members {
		m := &member{
			id:         pm.MemberID,
			instanceID: pm.InstanceID,
			clientID:   pm.ClientID,
			clientHost: pm.ClientHost,
			session:    time.Duration(pm.SessionTimeoutMs) * time.Millisecond,
			rebalance:  time.Duration(pm.RebalanceTimeoutMs) * time.Millisecond,
			protocols:  pm.Protocols,
			assignment: pm.Assignment,
			order:      g.nextOrder,
		}
		g.nextOrder++
		g.members[m.id] = m
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
		g.armSessionLocked(m)
	}
	g.loaded = true
	gc.metrics.groups.WithLabelValues(g.state).Inc()
	switch g.state {
	case metadata.GroupPreparingRebalance:
		// Parked joins were on the previous coordinator; members rejoin
		// when their heartbeat says REBALANCE_IN_PROGRESS.
		g.rebalanceStart = time.Now()
		g.armJoinTimerLocked(g.maxRebalanceTimeoutLocked())
	case metadata.GroupCompletingRebalance:
		g.pendingSync = map[string]bool{}
		for id := range g.members {
			g.pendingSync[id] = true
		}
		g.rebalanceStart = time.Now()
		g.armSyncTimerLocked()
	}
	if found {
		gc.log.Info("group loaded", "group", g.name, "state", g.state, "generation", g.generation, "members", len(g.members))
		g.reemitLocked(ctx)
	}
	return nil
}

// dropLocked removes the group from memory: timers stop and parked
// requests get NOT_COORDINATOR. It does not touch etcd.
func (g *group) dropLocked(reason string) {
	if g.gone {
		return
	}
	g.gone = true
	g.stopJoinTimerLocked()
	g.stopSyncTimerLocked()
	for _, t := range g.pending {
		t.Stop()
	}
	if g.consumer != nil {
		for _, m := range g.consumer.members {
			g.stopConsumerTimersLocked(m)
		}
	}
	for _, m := range g.members {
		if m.timer != nil {
			m.timer.Stop()
		}
		m.timerSeq++
		if m.join != nil {
			m.join.fail(kerr.NotCoordinator)
			m.join = nil
		}
		if m.sync != nil {
			m.sync.fail(kerr.NotCoordinator)
			m.sync = nil
		}
	}
	if g.loaded {
		g.gc.metrics.groups.WithLabelValues(g.state).Dec()
		if g.memberCountLocked() > 0 || g.persisted {
			g.gc.log.Info("group dropped from memory", "group", g.name, "reason", reason)
		}
	}
	g.gc.forget(g)
}

// failLocked handles a failed etcd write: the group is dropped (its state
// in etcd is the last one written), and the claim released unless it is
// already gone. It returns the error for the request at hand.
func (g *group) failLocked(err error) error {
	gc := g.gc
	lost := errors.Is(err, metadata.ErrGroupClaimLost)
	if !lost && gc.ctx.Err() == nil {
		gc.log.Warn("writing group state failed; dropping the group from memory", "group", g.name, "err", err)
	}
	claim := g.claim
	g.dropLocked("an etcd write failed")
	if !lost {
		gc.goBackground(func() { gc.release(claim) })
	}
	return kafkaErrorf(kerr.NotCoordinator, "group %q: %v; find the coordinator again", g.name, err)
}

func (g *group) snapshotLocked() metadata.GroupState {
	st := metadata.GroupState{
		Name:         g.name,
		State:        g.state,
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Leader:       g.leader,
		StateSince:   g.stateSince.UnixMilli(),
	}
	for _, m := range g.sortedMembersLocked() {
		st.Members = append(st.Members, m.persisted())
	}
	if g.consumer != nil {
		st.Type = metadata.GroupTypeConsumer
		st.Consumer = g.consumer.persisted()
	}
	return st
}

// persistLocked writes the group's state through its claim. On failure
// the group is dropped and the error is for the client.
func (g *group) persistLocked() error {
	ctx, cancel := g.gc.etcdCtx()
	defer cancel()
	if _, err := g.gc.a.store.SaveGroup(ctx, g.claim, g.snapshotLocked()); err != nil {
		return g.failLocked(err)
	}
	g.persisted = true
	g.feedMetadataLocked()
	return nil
}

func (g *group) setStateLocked(s string) {
	if g.state == s {
		return
	}
	if g.loaded {
		g.gc.metrics.groups.WithLabelValues(g.state).Dec()
		g.gc.metrics.groups.WithLabelValues(s).Inc()
	}
	g.state = s
	g.stateSince = time.Now()
}

func (g *group) sortedMembersLocked() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int {
		switch {
		case a.order < b.order:
			return -1
		case a.order > b.order:
			return 1
		}
		return 0
	})
	return ms
}

func (g *group) maxRebalanceTimeoutLocked() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return max(d, time.Millisecond)
}

// Timers. Each callback checks a sequence number, so a timer that fired
// while being stopped or replaced does nothing.

func (g *group) armSessionLocked(m *member) {
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerSeq++
	seq := m.timerSeq
	m.timer = g.gc.afterFunc(m.session, func() { g.sessionExpired(m, seq) })
}

func (g *group) sessionExpired(m *member, seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || g.members[m.id] != m || m.timerSeq != seq {
		return
	}
	if m.join != nil || m.sync != nil {
		// A parked member is alive; the rebalance and sync deadlines
		// bound how long it can wait.
		g.armSessionLocked(m)
		return
	}
	g.gc.log.Info("group member session expired", "group", g.name, "member", m.id, "session_timeout", m.session)
	g.removeMemberLocked(m, kerr.UnknownMemberID)
	g.membersRemovedLocked()
}

func (g *group) armJoinTimerLocked(d time.Duration) {
	g.stopJoinTimerLocked()
	seq := g.joinSeq
	g.joinTimer = g.gc.afterFunc(d, func() { g.joinDeadline(seq) })
}

func (g *group) stopJoinTimerLocked() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinSeq++
}

func (g *group) joinDeadline(seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || seq != g.joinSeq || g.state != metadata.GroupPreparingRebalance {
		return
	}
	if g.initialDelay && g.newMemberAdded && g.initialRemaining > 0 {
		g.newMemberAdded = false
		d := min(g.gc.cfg.InitialRebalanceDelay, g.initialRemaining)
		g.initialRemaining -= d
		g.armJoinTimerLocked(d)
		return
	}
	g.completeJoinLocked()
}

func (g *group) armSyncTimerLocked() {
	g.stopSyncTimerLocked()
	seq := g.syncSeq
	g.syncTimer = g.gc.afterFunc(g.maxRebalanceTimeoutLocked(), func() { g.syncDeadline(seq) })
}

func (g *group) stopSyncTimerLocked() {
	if g.syncTimer != nil {
		g.syncTimer.Stop()
		g.syncTimer = nil
	}
	g.syncSeq++
}

// syncDeadline removes members that did not SyncGroup within the
// rebalance timeout, and rebalances the rest.
func (g *group) syncDeadline(seq uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gone || seq != g.syncSeq || len(g.pendingSync) == 0 {
		return
	}
	if g.state != metadata.GroupCompletingRebalance && g.state != metadata.GroupStable {
		return
	}
	for id := range g.pendingSync {
		if m := g.members[id]; m != nil {
			g.gc.log.Info("group member did not sync in time", "group", g.name, "member", id)
			g.removeMemberLocked(m, kerr.RebalanceInProgress)
		}
	}
	g.pendingSync = nil
	g.membersRemovedLocked()
}

// Membership.

func newMemberID(clientID string, instanceID *string) string {
	prefix := clientID
	if instanceID != nil {
		prefix = *instanceID
	}
	return prefix + "-" + uuid.NewString()
}

func (g *group) newMemberLocked(id string, rq *request, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) *member {
	m := &member{
		id:         id,
		instanceID: req.InstanceID,
		clientID:   rq.clientID,
		clientHost: clientHost(rq.conn.remote),
		session:    session,
		rebalance:  rebalance,
		protocols:  joinProtocols(req),
		order:      g.nextOrder,
	}
	g.nextOrder++
	return m
}

// clientHost formats a client address as Kafka reports it ("/1.2.3.4").
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return "/" + host
}

func joinProtocols(req *kmsg.JoinGroupRequest) []metadata.GroupProtocol {
	ps := make([]metadata.GroupProtocol, len(req.Protocols))
	for i, p := range req.Protocols {
		ps[i] = metadata.GroupProtocol{Name: p.Name, Metadata: p.Metadata}
	}
	return ps
}

// updateMemberLocked applies a known member's rejoin and reports whether
// anything persisted changed.
func (g *group) updateMemberLocked(m *member, rq *request, req *kmsg.JoinGroupRequest, session, rebalance time.Duration) bool {
	changed := !m.sameProtocols(req.Protocols) || m.session != session || m.rebalance != rebalance || m.clientID != rq.clientID
	m.clientID = rq.clientID
	m.clientHost = clientHost(rq.conn.remote)
	m.session = session
	m.rebalance = rebalance
	m.protocols = joinProtocols(req)
	if len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	return changed
}

// removeMemberLocked removes m, answering its parked requests with code.
// It does not rebalance; see membersRemovedLocked.
func (g *group) removeMemberLocked(m *member, code *kerr.Error) {
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if m.timer != nil {
		m.timer.Stop()
	}
	m.timerSeq++
	if m.join != nil {
		m.join.fail(code)
		m.join = nil
	}
	if m.sync != nil {
		m.sync.fail(code)
		m.sync = nil
	}
	delete(g.pendingSync, m.id)
	if g.leader == m.id {
		g.leader = ""
	}
}

// membersRemovedLocked moves the group on after members were removed:
// the rest rebalance, and the removal is persisted either way.
func (g *group) membersRemovedLocked() {
	switch g.state {
	case metadata.GroupStable, metadata.GroupCompletingRebalance:
		g.prepareRebalanceLocked("members left")
	case metadata.GroupPreparingRebalance:
		if !g.tryCompleteJoinLocked() {
			g.persistLocked()
		}
	default:
		g.persistLocked()
	}
}

// checkInstanceLocked validates a static member's instance ID against the
// member ID it claims to be.
func (g *group) checkInstanceLocked(instanceID *string, memberID string) *kerr.Error {
	if instanceID == nil {
		return nil
	}
	known, ok := g.static[*instanceID]
	switch {
	case !ok:
		return kerr.UnknownMemberID
	case known != memberID:
		return kerr.FencedInstanceID
	}
	return nil
}

// protocolsAcceptableLocked reports whether a member joining with these
// protocols can be part of the group: a group with no other members takes
// any protocol; otherwise the type must match and at least one protocol
// must be supported by every other member.
func (g *group) protocolsAcceptableLocked(req *kmsg.JoinGroupRequest) bool {
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return false
	}
	others := len(g.members)
	if _, ok := g.members[req.MemberID]; ok {
		others--
	}
	if others == 0 {
		return true
	}
	if req.ProtocolType != g.protocolType {
		return false
	}
	for _, p := range req.Protocols {
		if g.supportedByAllLocked(p.Name, req.MemberID) {
			return true
		}
	}
	return false
}

// supportedByAllLocked reports whether every member but except supports
// protocol.
func (g *group) supportedByAllLocked(protocol, except string) bool {
	for _, m := range g.members {
		if m.id == except {
			continue
		}
		if _, ok := m.metadataFor(protocol); !ok {
			return false
		}
	}
	return true
}

// selectProtocolLocked picks the group's protocol as Kafka does: among
// the protocols every member supports, each member votes for the one it
// lists first, and the most votes win (ties go to the protocol the
// longest-standing member prefers).
func (g *group) selectProtocolLocked() string {
	members := g.sortedMembersLocked()
	if len(members) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range members[0].protocols {
		if g.supportedByAllLocked(p.Name, "") {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// Rebalancing.

// maybeRebalanceLocked starts a rebalance, or, if one is under way, checks
// whether it can complete. changed says whether the group's persisted
// membership changed (a member was added or its protocols or timeouts
// differ), so the state is written even if the barrier stays open.
func (g *group) maybeRebalanceLocked(reason string, changed bool) {
	if g.state == metadata.GroupPreparingRebalance {
		if !g.tryCompleteJoinLocked() && changed {
			g.persistLocked()
		}
		return
	}
	g.prepareRebalanceLocked(reason)
}

// prepareRebalanceLocked moves the group to PreparingRebalance: members
// must rejoin within the rebalance timeout. The first rebalance of an
// empty group waits the initial delay for more members.
func (g *group) prepareRebalanceLocked(reason string) {
	if g.state == metadata.GroupCompletingRebalance {
		for _, m := range g.members {
			m.assignment = nil
			if m.sync != nil {
				m.sync.fail(kerr.RebalanceInProgress)
				m.sync = nil
			}
		}
	}
	g.stopSyncTimerLocked()
	g.pendingSync = nil
	wasEmpty := g.state == metadata.GroupEmpty
	if g.state != metadata.GroupPreparingRebalance {
		g.rebalanceStart = time.Now()
		g.gc.metrics.rebalances.Inc()
	}
	g.setStateLocked(metadata.GroupPreparingRebalance)
	g.gc.log.Debug("group rebalancing", "group", g.name, "reason", reason, "generation", g.generation, "members", len(g.members))
	if err := g.persistLocked(); err != nil {
		return
	}
	timeout := g.maxRebalanceTimeoutLocked()
	delay := g.gc.cfg.InitialRebalanceDelay
	if wasEmpty && delay > 0 {
		g.initialDelay = true
		g.newMemberAdded = false
		g.initialRemaining = max(timeout-delay, 0)
		g.armJoinTimerLocked(min(delay, timeout))
		return
	}
	g.initialDelay = false
	g.armJoinTimerLocked(timeout)
	g.tryCompleteJoinLocked()
}

// tryCompleteJoinLocked completes the join barrier if every member has
// rejoined and no member ID handed out is still expected.
func (g *group) tryCompleteJoinLocked() bool {
	if g.state != metadata.GroupPreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.join == nil {
			return false
		}
	}
	g.completeJoinLocked()
	return true
}

// completeJoinLocked ends the join barrier: members that did not rejoin
// are removed, the generation advances, and the joined members are
// answered (the leader with everyone's metadata).
func (g *group) completeJoinLocked() {
	g.stopJoinTimerLocked()
	g.initialDelay = false
	for _, m := range g.members {
		if m.join == nil {
			g.gc.log.Info("group member did not rejoin in time", "group", g.name, "member", m.id)
			g.removeMemberLocked(m, kerr.UnknownMemberID)
		}
	}
	g.generation++
	if g.generation < 0 {
		g.generation = 1
	}
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.setStateLocked(metadata.GroupEmpty)
		if g.persistLocked() == nil {
			g.gc.metrics.duration.Observe(time.Since(g.rebalanceStart).Seconds())
		}
		return
	}
	g.protocol = g.selectProtocolLocked()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.sortedMembersLocked()[0].id
	}
	g.pendingSync = map[string]bool{}
	for _, m := range g.members {
		m.assignment = nil
		g.pendingSync[m.id] = true
	}
	g.setStateLocked(metadata.GroupCompletingRebalance)
	if err := g.persistLocked(); err != nil {
		return
	}
	for _, m := range g.members {
		resp := m.join.req.ResponseKind().(*kmsg.JoinGroupResponse)
		g.fillJoinLocked(m, resp)
		m.join.reply(resp)
		m.join = nil
		g.armSessionLocked(m)
	}
	g.armSyncTimerLocked()
}

func (g *group) fillJoinLocked(m *member, resp *kmsg.JoinGroupResponse) {
	resp.Generation = g.generation
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id != g.leader {
		return
	}
	for _, o := range g.sortedMembersLocked() {
		jm := kmsg.NewJoinGroupResponseMember()
		jm.MemberID = o.id
		jm.InstanceID = o.instanceID
		jm.ProtocolMetadata, _ = o.metadataFor(g.protocol)
		resp.Members = append(resp.Members, jm)
	}
}

// completeSyncLocked applies the leader's assignment and makes the group
// Stable, answering every parked SyncGroup.
func (g *group) completeSyncLocked(assignments []kmsg.SyncGroupRequestGroupAssignment) {
	for _, m := range g.members {
		m.assignment = nil
	}
	for _, a := range assignments {
		if m, ok := g.members[a.MemberID]; ok {
			m.assignment = a.MemberAssignment
		}
	}
	for _, m := range g.members {
		if len(m.assignment) == 0 && g.protocolType == consumerProtocolType {
			m.assignment = emptyConsumerAssignment
		}
	}
	g.setStateLocked(metadata.GroupStable)
	if err := g.persistLocked(); err != nil {
		return
	}
	g.gc.metrics.duration.Observe(time.Since(g.rebalanceStart).Seconds())
	g.gc.log.Debug("group stable", "group", g.name, "generation", g.generation, "members", len(g.members), "took", time.Since(g.rebalanceStart))
	for _, m := range g.members {
		if m.sync == nil {
			continue
		}
		m.sync.reply(g.syncResponseLocked(m, m.sync.req.(*kmsg.SyncGroupRequest)))
		m.sync = nil
	}
}

func (g *group) syncResponseLocked(m *member, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ProtocolType = kmsg.StringPtr(g.protocolType)
	resp.Protocol = kmsg.StringPtr(g.protocol)
	resp.MemberAssignment = m.assignment
	return resp
}

// subscribedTopicsLocked returns the topics the members of a consumer
// group subscribe to, from their metadata for the group's protocol, or nil
// when that is unknown (not a consumer group, no protocol yet, or
// metadata that does not decode).
func (g *group) subscribedTopicsLocked() map[string]bool {
	if g.consumer != nil {
		if len(g.consumer.members) == 0 {
			return nil
		}
		topics := map[string]bool{}
		for _, t := range g.consumer.topics {
			topics[t.Name] = true
		}
		return topics
	}
	if g.protocolType != consumerProtocolType || g.protocol == "" || len(g.members) == 0 {
		return nil
	}
	topics := map[string]bool{}
	for _, m := range g.members {
		md, ok := m.metadataFor(g.protocol)
		if !ok {
			return nil
		}
		var cm kmsg.ConsumerMemberMetadata
		if err := cm.ReadFrom(md); err != nil {
			return nil
		}
		for _, t := range cm.Topics {
			topics[t] = true
		}
	}
	return topics
}

// serveParked adapts a handler that answers at once or parks the request
// until its group decides (JoinGroup, SyncGroup). A parked request is
// answered from a goroutine the connection owns, so the connection keeps
// reading other requests meanwhile; the writer still sends responses in
// order.
func serveParked[Req kmsg.Request](fn func(*groupCoordinator, context.Context, *request, Req) (kmsg.Response, <-chan kmsg.Response)) serveFunc {
	return func(a *Agent, ctx context.Context, rq *request) {
		resp, wait := fn(a.groups, ctx, rq, rq.req.(Req))
		if wait == nil {
			rq.reply(resp)
			return
		}
		rq.conn.goAsync(func() {
			select {
			case r := <-wait:
				rq.reply(r)
			case <-rq.conn.ctx.Done():
				// The connection is gone; so is the response's reader.
			}
		})
	}
}

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }
