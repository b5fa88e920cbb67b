package agent

// DescribeCluster, v0–v1.
//
// Lists live agents as brokers, the cluster ID, and the lowest node ID as
// controller (floe has no controller; the value is stable and always a
// live agent). v1's endpoint type 1 (brokers) is the only type served.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register(apiSpec{key: 60, min: 0, max: 1, serve: handleSync((*Agent).handleDescribeCluster)})
}

func (a *Agent) handleDescribeCluster(_ context.Context, rq *request, req *kmsg.DescribeClusterRequest) (*kmsg.DescribeClusterResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		resp.ErrorMessage = errMessage("floe serves broker endpoints only (endpoint type 1)")
		return resp, nil
	}
	agents := a.liveAgents()
	resp.ClusterID = a.cluster.ID
	resp.ControllerID = agents[0].NodeID
	resp.ClusterAuthorizedOperations = authorizedOpsUnset
	for _, ag := range agents {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID = ag.NodeID
		b.Host, b.Port = ag.Endpoint(rq.conn.lst.cfg.Protocol)
		if ag.Zone != "" {
			zone := ag.Zone
			b.Rack = &zone
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	return resp, nil
}
