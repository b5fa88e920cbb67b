package agent

// FindCoordinator, v0–v6.
//
// Key type 0 (group): the coordinator is the agent metadata.Leader picks
// among the live agents for metadata.GroupKey(group), the same rendezvous
// placement that spreads partition leadership, so every agent gives the
// same answer while its view is current and groups move only when their
// agent comes or goes. v4+ batches keys.
//
// Key type 1 (transaction): the same placement of metadata.TxnKey(id)
// among live agents names the transaction coordinator. Share-group keys
// (type 2) get INVALID_REQUEST.
//
// A zoned client is named an agent of its zone, which forwards the
// group's or transaction's requests to a coordinator in another zone
// (forward.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 10, min: 0, max: 6, serve: handleSync((*Agent).handleFindCoordinator)})
}

func (a *Agent) handleFindCoordinator(_ context.Context, rq *request, req *kmsg.FindCoordinatorRequest) (*kmsg.FindCoordinatorResponse, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID = -1
		switch req.CoordinatorType {
		case 0:
			if !a.authorizedGroup(rq.conn, metadata.ACLOpDescribe, key) {
				c.ErrorCode = kerr.GroupAuthorizationFailed.Code
				break
			}
			ag := a.zoneCoordinator(coordinatorGroup, key, rq.zone)
			c.NodeID = ag.NodeID
			c.Host, c.Port = ag.Endpoint(rq.conn.lst.cfg.Protocol)
		case 1:
			if !a.authorized(rq.conn, metadata.ACLOpDescribe, metadata.ACLResourceTransactionalID, key) {
				c.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				break
			}
			if err := metadata.ValidateTransactionalID(key); err != nil {
				c.ErrorCode = kerr.InvalidRequest.Code
				c.ErrorMessage = errMessage(err.Error())
				break
			}
			ag := a.zoneCoordinator(coordinatorTxn, key, rq.zone)
			c.NodeID = ag.NodeID
			c.Host, c.Port = ag.Endpoint(rq.conn.lst.cfg.Protocol)
		default:
			c.ErrorCode = kerr.InvalidRequest.Code
			c.ErrorMessage = errMessage("floe serves group (0) and transaction (1) coordinators only")
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
	}
	return resp, nil
}
