package agent

// LeaveGroup, v0–v5 (classic group protocol).
//
// Served by the group's coordinator only. v0–v2 remove one member by
// member ID; v3+ remove a batch, each by member ID or by static instance
// ID (a member ID that does not match the instance's current member gets
// FENCED_INSTANCE_ID). Removed members' parked requests are answered with
// UNKNOWN_MEMBER_ID, and the remaining members rebalance once for the
// whole batch. A member ID handed out with MEMBER_ID_REQUIRED that never
// joined is simply forgotten. v5's per-member reason is logged.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 13, min: 0, max: 5, serve: handleSync((*Agent).handleLeaveGroup)})
}

func (a *Agent) handleLeaveGroup(ctx context.Context, rq *request, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil
	}
	members := req.Members
	if req.Version < 3 {
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = req.MemberID
		members = []kmsg.LeaveGroupRequestMember{m}
	}
	codes, err := a.groups.leave(ctx, req.Group, members)
	if err != nil {
		ke, _ := kafkaError(err)
		resp.ErrorCode = ke.Code
		return resp, nil
	}
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp, nil
	}
	for i, rm := range members {
		m := kmsg.NewLeaveGroupResponseMember()
		m.MemberID = rm.MemberID
		m.InstanceID = rm.InstanceID
		m.ErrorCode = codes[i]
		resp.Members = append(resp.Members, m)
	}
	return resp, nil
}

// leave removes members and returns an error code per member.
func (gc *groupCoordinator) leave(ctx context.Context, name string, members []kmsg.LeaveGroupRequestMember) ([]int16, error) {
	g, err := gc.acquire(ctx, name)
	if err != nil {
		return nil, err
	}
	defer g.unlockReleasingIdle()
	codes := make([]int16, len(members))
	if g.consumer != nil {
		removed := 0
		for i, rm := range members {
			if code := g.consumerClassicLeaveLocked(rm); code != nil {
				codes[i] = code.Code
				continue
			}
			removed++
		}
		if removed > 0 {
			if err := g.persistAfterRemovalLocked(); err != nil {
				return nil, err
			}
		}
		return codes, nil
	}
	removed := 0
	for i, rm := range members {
		id := rm.MemberID
		if rm.InstanceID != nil {
			known, ok := g.static[*rm.InstanceID]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID.Code
				continue
			case id != "" && id != known:
				codes[i] = kerr.FencedInstanceID.Code
				continue
			}
			id = known
		}
		if t, ok := g.pending[id]; ok {
			t.Stop()
			delete(g.pending, id)
			continue
		}
		m, ok := g.members[id]
		if !ok {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		reason := ""
		if rm.Reason != nil {
			reason = *rm.Reason
		}
		gc.log.Info("group member left", "group", g.name, "member", id, "reason", reason)
		g.removeMemberLocked(m, kerr.UnknownMemberID)
		removed++
	}
	if removed > 0 {
		g.membersRemovedLocked()
	} else if len(g.pending) == 0 {
		g.tryCompleteJoinLocked()
	}
	return codes, nil
}
