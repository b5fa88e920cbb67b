package agent

// DeleteAcls, v0–v3. See 29_describe_acls.go.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 31, min: 0, max: 3, serve: handleSync((*Agent).handleDeleteACLs)})
}

func (a *Agent) handleDeleteACLs(ctx context.Context, rq *request, req *kmsg.DeleteACLsRequest) (*kmsg.DeleteACLsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	allowed := a.authorizedCluster(rq.conn, metadata.ACLOpAlter)
	var lastRev int64
	for _, rf := range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		if !allowed {
			r.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			r.ErrorMessage = errMessage("deleting ACLs needs ALTER on the cluster")
			resp.Results = append(resp.Results, r)
			continue
		}
		pattern := int8(rf.ResourcePatternType)
		if req.Version == 0 {
			pattern = metadata.ACLPatternLiteral
		}
		f := aclFilter{int8(rf.ResourceType), rf.ResourceName, pattern, rf.Principal, rf.Host, int8(rf.Operation), int8(rf.PermissionType)}
		deleted, rev, err := a.store.DeleteACLs(ctx, f.matches)
		if err != nil {
			ke, msg := kafkaError(err)
			r.ErrorCode = ke.Code
			r.ErrorMessage = errMessage(msg)
		}
		lastRev = max(lastRev, rev)
		for _, acl := range deleted {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType = kmsg.ACLResourceType(acl.ResourceType)
			m.ResourceName = acl.ResourceName
			m.ResourcePatternType = kmsg.ACLResourcePatternType(acl.PatternType)
			m.Principal = acl.Principal
			m.Host = acl.Host
			m.Operation = kmsg.ACLOperation(acl.Operation)
			m.PermissionType = kmsg.ACLPermissionType(acl.Permission)
			r.MatchingACLs = append(r.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, r)
	}
	if lastRev > 0 {
		if err := a.view.WaitACLsRevision(ctx, lastRev); err != nil {
			return nil, err
		}
	}
	return resp, nil
}
