package agent

// JoinGroup, v0–v9 (classic group protocol).
//
// Served by the group's coordinator only (NOT_COORDINATOR elsewhere). A
// join is a long poll: it parks until the join barrier completes (every
// member rejoined, or the largest rebalance timeout passed; for an empty
// group, after group.initial.rebalance.delay) and is answered from a
// goroutine the connection owns, so the connection's other requests keep
// flowing.
//
//   - Session timeouts outside the configured bounds get
//     INVALID_SESSION_TIMEOUT. v0 has no rebalance timeout; the session
//     timeout stands in for it, as in Kafka.
//   - A member must offer the group's protocol type and at least one
//     protocol every member supports (INCONSISTENT_GROUP_PROTOCOL).
//   - v4+: a dynamic member joining without an ID is given one with
//     MEMBER_ID_REQUIRED and must join again with it (KIP-394).
//   - v5+ static members (group.instance.id) join without that round
//     trip. A static member rejoining with a new member ID replaces its
//     old incarnation, which is fenced (FENCED_INSTANCE_ID); if the group
//     is Stable and the member's protocols are unchanged, it gets its old
//     assignment back without a rebalance (KIP-345), and a leader rejoining
//     this way is told to skip assigning (SkipAssignment, v9, KIP-814).
//   - A known member rejoining a Stable group with unchanged protocols is
//     answered at once with the current generation, unless it is the
//     leader (the leader rejoins to force a new assignment).
//
// Assignment is the leader client's job, so every client-side assignor
// works (range, roundrobin, sticky, cooperative-sticky).

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 11, min: 0, max: 9, serve: serveParked((*groupCoordinator).joinGroup)})
}

func (gc *groupCoordinator) joinGroup(ctx context.Context, rq *request, req *kmsg.JoinGroupRequest) (kmsg.Response, <-chan kmsg.Response) {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	resp.MemberID = req.MemberID
	resp.Protocol = kmsg.StringPtr("")
	fail := func(err error) (kmsg.Response, <-chan kmsg.Response) {
		ke, msg := kafkaError(err)
		resp.ErrorCode = ke.Code
		gc.log.Debug("JoinGroup refused", "group", req.Group, "member", req.MemberID, "client_id", rq.clientID, "err", msg)
		return resp, nil
	}
	if !gc.a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	session := millis(req.SessionTimeoutMillis)
	rebalance := session
	if req.Version >= 1 && req.RebalanceTimeoutMillis > 0 {
		rebalance = millis(req.RebalanceTimeoutMillis)
	}
	if session < gc.cfg.MinSessionTimeout || session > gc.cfg.MaxSessionTimeout {
		return fail(kafkaErrorf(kerr.InvalidSessionTimeout, "session timeout %s is outside the allowed %s to %s", session, gc.cfg.MinSessionTimeout, gc.cfg.MaxSessionTimeout))
	}
	g, err := gc.acquire(ctx, req.Group)
	if err != nil {
		return fail(err)
	}
	defer g.unlockReleasingIdle()
	if req.Reason != nil && *req.Reason != "" {
		gc.log.Debug("member joining group", "group", g.name, "member", req.MemberID, "reason", *req.Reason)
	}
	if g.consumer != nil && len(g.consumer.members) > 0 {
		err := g.consumerClassicJoinLocked(rq, req, resp, session, rebalance)
		if errors.Is(err, kerr.MemberIDRequired) {
			resp.ErrorCode = kerr.MemberIDRequired.Code
			return resp, nil
		}
		if err != nil {
			return fail(err)
		}
		return resp, nil
	}
	if err := g.toClassicLocked(); err != nil {
		return fail(err)
	}
	if !g.protocolsAcceptableLocked(req) {
		return fail(kafkaErrorf(kerr.InconsistentGroupProtocol, "protocol type %q with protocols %v is not compatible with group %q", req.ProtocolType, protocolNames(req), g.name))
	}

	if req.MemberID == "" {
		if err := g.roomForLocked(req); err != nil && (req.InstanceID == nil || g.static[*req.InstanceID] == "") {
			return fail(err)
		}
		if req.InstanceID != nil {
			if old, ok := g.static[*req.InstanceID]; ok {
				return g.replaceStaticLocked(old, rq, req, resp, session, rebalance)
			}
			return g.addMemberLocked(g.newMemberLocked(newMemberID(rq.clientID, req.InstanceID), rq, req, session, rebalance), req)
		}
		id := newMemberID(rq.clientID, nil)
		if req.Version >= 4 {
			g.addPendingLocked(id, session)
			resp.MemberID = id
			resp.ErrorCode = kerr.MemberIDRequired.Code
			return resp, nil
		}
		return g.addMemberLocked(g.newMemberLocked(id, rq, req, session, rebalance), req)
	}

	if code := g.checkInstanceLocked(req.InstanceID, req.MemberID); code != nil {
		return fail(code)
	}
	if t, ok := g.pending[req.MemberID]; ok {
		if err := g.roomForLocked(req); err != nil {
			return fail(err)
		}
		t.Stop()
		delete(g.pending, req.MemberID)
		return g.addMemberLocked(g.newMemberLocked(req.MemberID, rq, req, session, rebalance), req)
	}
	m, ok := g.members[req.MemberID]
	if !ok {
		return fail(kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", req.MemberID, g.name))
	}
	switch g.state {
	case metadata.GroupPreparingRebalance:
	case metadata.GroupCompletingRebalance, metadata.GroupStable:
		if m.sameProtocols(req.Protocols) && (g.state == metadata.GroupCompletingRebalance || m.id != g.leader) {
			// Nothing changed: answer with the current generation.
			g.armSessionLocked(m)
			g.fillJoinLocked(m, resp)
			return resp, nil
		}
	default:
		return fail(kafkaErrorf(kerr.UnknownMemberID, "group %q has no members", g.name))
	}
	changed := g.updateMemberLocked(m, rq, req, session, rebalance)
	w := newWaiter(req)
	if m.join != nil {
		// A client that joins twice has given up on the first join.
		m.join.fail(kerr.RebalanceInProgress)
	}
	m.join = w
	g.maybeRebalanceLocked("member rejoined", changed)
	return nil, w.ch
}

func protocolNames(req *kmsg.JoinGroupRequest) []string {
	names := make([]string, len(req.Protocols))
	for i, p := range req.Protocols {
		names[i] = p.Name
	}
	return names
}

// addPendingLocked remembers a member ID handed out with
// MEMBER_ID_REQUIRED for one session timeout.
// roomForLocked refuses a new member when the group is full: it has
// group.max.size members, or its state in etcd (every member's protocol
// metadata and assignment) would outgrow what one etcd request may
// carry, half of --etcd-max-request-bytes, with the newcomer's metadata
// (GROUP_MAX_SIZE_REACHED, as Kafka answers a full group).
func (g *group) roomForLocked(req *kmsg.JoinGroupRequest) error {
	if max := g.gc.cfg.MaxSize; max > 0 && len(g.members) >= max {
		return kafkaErrorf(kerr.GroupMaxSizeReached, "group %q has %d members, the most group.max.size allows", g.name, len(g.members))
	}
	size := 0
	for _, p := range req.Protocols {
		size += len(p.Name) + len(p.Metadata)
	}
	for _, m := range g.members {
		size += len(m.assignment)
		for _, p := range m.protocols {
			size += len(p.Name) + len(p.Metadata)
		}
	}
	if limit := g.gc.a.cfg.EtcdMaxRequestBytes / 2; size > limit {
		return kafkaErrorf(kerr.GroupMaxSizeReached, "group %q's members' protocol metadata and assignments would take %d bytes, more than the %d its state in etcd may hold", g.name, size, limit)
	}
	return nil
}

func (g *group) addPendingLocked(id string, session time.Duration) {
	var t *time.Timer
	t = g.gc.afterFunc(session, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gone || g.pending[id] != t {
			return
		}
		delete(g.pending, id)
		g.tryCompleteJoinLocked()
	})
	g.pending[id] = t
}

// addMemberLocked adds a member whose join parks until the barrier
// completes.
func (g *group) addMemberLocked(m *member, req *kmsg.JoinGroupRequest) (kmsg.Response, <-chan kmsg.Response) {
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	w := newWaiter(req)
	m.join = w
	g.armSessionLocked(m)
	if g.state == metadata.GroupPreparingRebalance && g.initialDelay {
		g.newMemberAdded = true
	}
	g.maybeRebalanceLocked("member joined", true)
	return nil, w.ch
}

// replaceStaticLocked handles a static member joining under its instance
// ID without a member ID: a restart. The old incarnation is fenced and
// replaced by a new member ID that keeps its assignment.
func (g *group) replaceStaticLocked(oldID string, rq *request, req *kmsg.JoinGroupRequest, resp *kmsg.JoinGroupResponse, session, rebalance time.Duration) (kmsg.Response, <-chan kmsg.Response) {
	old := g.members[oldID]
	m := g.newMemberLocked(newMemberID(rq.clientID, req.InstanceID), rq, req, session, rebalance)
	m.order = old.order
	m.assignment = old.assignment
	// Unchanged means: the group's protocol is still one every member
	// supports, and this member's metadata for it is what it was.
	oldMeta, hadProtocol := old.metadataFor(g.protocol)
	newMeta, hasProtocol := m.metadataFor(g.protocol)
	unchanged := hadProtocol && hasProtocol && bytes.Equal(oldMeta, newMeta) && g.supportedByAllLocked(g.protocol, oldID)

	wasLeader := g.leader == oldID
	wasPendingSync := g.pendingSync[oldID]
	g.removeMemberLocked(old, kerr.FencedInstanceID)
	g.members[m.id] = m
	g.static[*m.instanceID] = m.id
	if wasLeader {
		g.leader = m.id
	}
	g.gc.log.Info("static member rejoined", "group", g.name, "instance_id", *m.instanceID, "old_member", oldID, "member", m.id, "unchanged", unchanged)

	if g.state == metadata.GroupStable && unchanged {
		if wasPendingSync {
			g.pendingSync[m.id] = true
		}
		if err := g.persistLocked(); err != nil {
			ke, _ := kafkaError(err)
			resp.ErrorCode = ke.Code
			return resp, nil
		}
		g.armSessionLocked(m)
		g.fillJoinLocked(m, resp)
		resp.SkipAssignment = m.id == g.leader
		return resp, nil
	}
	w := newWaiter(req)
	m.join = w
	g.armSessionLocked(m)
	g.maybeRebalanceLocked("static member rejoined with new metadata", true)
	return nil, w.ch
}
