package agent

// ConsumerGroupHeartbeat, v0–v1: the consumer group protocol of KIP-848
// (consumer_group.go has the state machine).
//
// Served by the group's coordinator only (NOT_COORDINATOR elsewhere). A
// member joins with epoch 0 (v1: with a member ID it generated; v0: the
// coordinator gives one), heartbeats with the epoch it was last given,
// leaves with -1, and a static member leaves with -2 to come back to its
// assignment. Requests are checked as Kafka checks them: missing fields
// get INVALID_REQUEST, an unknown server assignor UNSUPPORTED_ASSIGNOR, a
// regex that does not compile INVALID_REGULAR_EXPRESSION. An empty classic
// group becomes a consumer-protocol group when a member joins it; a
// classic group with members answers GROUP_ID_NOT_FOUND.

import (
	"context"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 68, min: 0, max: 1, serve: handleSync((*Agent).handleConsumerGroupHeartbeat)})
}

func (a *Agent) handleConsumerGroupHeartbeat(ctx context.Context, rq *request, req *kmsg.ConsumerGroupHeartbeatRequest) (*kmsg.ConsumerGroupHeartbeatResponse, error) {
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.MemberEpoch = -1
	if err := a.consumerGroupHeartbeat(ctx, rq, req, resp); err != nil {
		ke, msg := kafkaError(err)
		resp.ErrorCode = ke.Code
		resp.ErrorMessage = errMessage(msg)
		resp.Assignment = nil
		if resp.MemberID == nil && req.MemberID != "" {
			resp.MemberID = &req.MemberID
		}
		a.groups.log.Debug("ConsumerGroupHeartbeat refused", "group", req.Group, "member", req.MemberID, "epoch", req.MemberEpoch, "client_id", rq.clientID, "err", msg)
	}
	return resp, nil
}

func (a *Agent) consumerGroupHeartbeat(ctx context.Context, rq *request, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse) error {
	if !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group) {
		return kerr.GroupAuthorizationFailed
	}
	gc := a.groups
	if err := validateConsumerHeartbeat(req, gc.cfg.ConsumerAssignors); err != nil {
		return err
	}
	if req.MemberID == "" {
		// v0: the coordinator names a joining member.
		req.MemberID = uuid.NewString()
	}
	g, err := gc.acquire(ctx, req.Group)
	if err != nil {
		return err
	}
	defer g.unlockReleasingIdle()
	return gc.consumerHeartbeat(g, rq, req, resp)
}
