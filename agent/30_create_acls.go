package agent

// CreateAcls, v0–v3. See 29_describe_acls.go.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 30, min: 0, max: 3, serve: handleSync((*Agent).handleCreateACLs)})
}

func (a *Agent) handleCreateACLs(ctx context.Context, rq *request, req *kmsg.CreateACLsRequest) (*kmsg.CreateACLsResponse, error) {
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	allowed := a.authorizedCluster(rq.conn, metadata.ACLOpAlter)
	var (
		valid []metadata.ACL
		index []int
	)
	for _, cr := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		pattern := int8(cr.ResourcePatternType)
		if req.Version == 0 {
			pattern = metadata.ACLPatternLiteral
		}
		acl := metadata.ACL{
			ResourceType: int8(cr.ResourceType), ResourceName: cr.ResourceName, PatternType: pattern,
			Principal: cr.Principal, Host: cr.Host, Operation: int8(cr.Operation), Permission: int8(cr.PermissionType),
		}
		switch err := acl.Validate(); {
		case !allowed:
			r.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			r.ErrorMessage = errMessage("creating ACLs needs ALTER on the cluster")
		case err != nil:
			r.ErrorCode = kerr.InvalidRequest.Code
			r.ErrorMessage = errMessage(err.Error())
		default:
			valid = append(valid, acl)
			index = append(index, len(resp.Results))
		}
		resp.Results = append(resp.Results, r)
	}
	if len(valid) == 0 {
		return resp, nil
	}
	rev, err := a.store.CreateACLs(ctx, valid, a.cfg.EtcdMaxTxnOps)
	if err == nil {
		err = a.view.WaitACLsRevision(ctx, rev)
	}
	if err != nil {
		ke, msg := kafkaError(err)
		for _, i := range index {
			resp.Results[i].ErrorCode = ke.Code
			resp.Results[i].ErrorMessage = errMessage(msg)
		}
		return resp, nil
	}
	a.log.Info("ACLs created", "count", len(valid), "by", rq.conn.auth.principal)
	return resp, nil
}
