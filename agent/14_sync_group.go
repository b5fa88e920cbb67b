package agent

// SyncGroup, v0–v5 (classic group protocol).
//
// Served by the group's coordinator only. After a join barrier completes,
// every member sends SyncGroup; the leader's carries the assignment it
// computed. Followers that arrive first park until the leader's arrives;
// the leader's makes the group Stable (persisted with every member's
// assignment) and answers everyone. In a Stable group SyncGroup returns
// the member's assignment at once. Members that do not SyncGroup within
// the rebalance timeout are removed and the rest rebalance.
//
// Errors as Kafka: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
// REBALANCE_IN_PROGRESS (a new barrier started), FENCED_INSTANCE_ID (v3+),
// INCONSISTENT_GROUP_PROTOCOL when v5's protocol type or name differ from
// the group's.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 14, min: 0, max: 5, serve: serveParked((*groupCoordinator).syncGroup)})
}

func (gc *groupCoordinator) syncGroup(ctx context.Context, rq *request, req *kmsg.SyncGroupRequest) (kmsg.Response, <-chan kmsg.Response) {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	fail := func(err error) (kmsg.Response, <-chan kmsg.Response) {
		ke, msg := kafkaError(err)
		resp.ErrorCode = ke.Code
		gc.log.Debug("SyncGroup refused", "group", req.Group, "member", req.MemberID, "err", msg)
		return resp, nil
	}
	if !gc.a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group) {
		return fail(kerr.GroupAuthorizationFailed)
	}
	g, err := gc.acquire(ctx, req.Group)
	if err != nil {
		return fail(err)
	}
	defer g.unlockReleasingIdle()
	if g.consumer != nil {
		if err := g.consumerClassicSyncLocked(req, resp); err != nil {
			return fail(err)
		}
		return resp, nil
	}
	if code := g.checkInstanceLocked(req.InstanceID, req.MemberID); code != nil {
		return fail(code)
	}
	m, ok := g.members[req.MemberID]
	switch {
	case !ok:
		return fail(kafkaErrorf(kerr.UnknownMemberID, "member %q is not in group %q", req.MemberID, g.name))
	case req.Generation != g.generation:
		return fail(kafkaErrorf(kerr.IllegalGeneration, "generation %d is not group %q's current generation %d", req.Generation, g.name, g.generation))
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		return fail(kafkaErrorf(kerr.InconsistentGroupProtocol, "group %q uses protocol %s/%s", g.name, g.protocolType, g.protocol))
	}
	switch g.state {
	case metadata.GroupPreparingRebalance:
		return fail(kerr.RebalanceInProgress)
	case metadata.GroupCompletingRebalance:
		w := newWaiter(req)
		if m.sync != nil {
			m.sync.fail(kerr.RebalanceInProgress)
		}
		m.sync = w
		delete(g.pendingSync, m.id)
		g.armSessionLocked(m)
		if m.id == g.leader {
			g.completeSyncLocked(req.GroupAssignment)
		}
		return nil, w.ch
	case metadata.GroupStable:
		delete(g.pendingSync, m.id)
		g.armSessionLocked(m)
		return g.syncResponseLocked(m, req), nil
	default:
		return fail(kafkaErrorf(kerr.UnknownMemberID, "group %q has no members", g.name))
	}
}
