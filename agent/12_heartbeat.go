package agent

// Heartbeat, v0–v4 (classic group protocol).
//
// Served by the group's coordinator only. A heartbeat restarts the
// member's session timeout. The answer tells the member what the group is
// doing: REBALANCE_IN_PROGRESS while a join barrier is open (rejoin now),
// UNKNOWN_MEMBER_ID once it was removed, ILLEGAL_GENERATION for an old
// generation, FENCED_INSTANCE_ID (v3+) for a replaced static member.
// Heartbeats are not persisted: a coordinator that takes over a group
// gives every member a fresh session timeout.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 12, min: 0, max: 4, serve: handleSync((*Agent).handleHeartbeat)})
}

func (a *Agent) handleHeartbeat(ctx context.Context, rq *request, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	if err := a.groups.heartbeat(ctx, req); err != nil {
		ke, _ := kafkaError(err)
		resp.ErrorCode = ke.Code
	}
	return resp, nil
}

func (gc *groupCoordinator) heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) error {
	g, err := gc.acquire(ctx, req.Group)
	if err != nil {
		return err
	}
	defer g.unlockReleasingIdle()
	if g.consumer != nil {
		return g.consumerClassicHeartbeatLocked(req)
	}
	if code := g.checkInstanceLocked(req.InstanceID, req.MemberID); code != nil {
		return code
	}
	m, ok := g.members[req.MemberID]
	switch {
	case !ok:
		return kerr.UnknownMemberID
	case req.Generation != g.generation:
		return kerr.IllegalGeneration
	}
	switch g.state {
	case metadata.GroupPreparingRebalance:
		g.armSessionLocked(m)
		return kerr.RebalanceInProgress
	case metadata.GroupCompletingRebalance, metadata.GroupStable:
		g.armSessionLocked(m)
		return nil
	default:
		return kerr.UnknownMemberID
	}
}
