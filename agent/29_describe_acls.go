package agent

// DescribeAcls, v0–v3; CreateAcls (30_...) and DeleteAcls (31_...).
//
// ACL bindings live in etcd (metadata.ACL) and every agent follows them
// through its view, so a change made through one agent applies on all of
// them within the watch delay; the agent that made it waits until its own
// view has it before answering. Describing needs DESCRIBE on the cluster;
// creating and deleting need ALTER on it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 29, min: 0, max: 3, serve: handleSync((*Agent).handleDescribeACLs)})
}

// aclFilter is a DescribeAcls or DeleteAcls filter.
type aclFilter struct {
	resourceType int8
	name         *string
	pattern      int8
	principal    *string
	host         *string
	op           int8
	permission   int8
}

// matches reports whether a binding passes the filter, with Kafka's
// semantics for ANY and MATCH.
func (f aclFilter) matches(acl metadata.ACL) bool {
	if f.resourceType != metadata.ACLResourceAny && f.resourceType != acl.ResourceType {
		return false
	}
	switch f.pattern {
	case metadata.ACLPatternAny:
		if f.name != nil && *f.name != acl.ResourceName {
			return false
		}
	case metadata.ACLPatternMatch:
		// Bindings that would apply to the named resource.
		if f.name != nil && !aclNameMatches(acl, *f.name) {
			return false
		}
	default:
		if f.pattern != acl.PatternType || f.name != nil && *f.name != acl.ResourceName {
			return false
		}
	}
	if f.principal != nil && *f.principal != acl.Principal {
		return false
	}
	if f.host != nil && *f.host != acl.Host {
		return false
	}
	if f.op != metadata.ACLOpAny && f.op != acl.Operation {
		return false
	}
	return f.permission == metadata.ACLPermissionAny || f.permission == acl.Permission
}

func (a *Agent) handleDescribeACLs(_ context.Context, rq *request, req *kmsg.DescribeACLsRequest) (*kmsg.DescribeACLsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !a.authorizedCluster(rq.conn, metadata.ACLOpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		resp.ErrorMessage = errMessage("describing ACLs needs DESCRIBE on the cluster")
		return resp, nil
	}
	pattern := int8(req.ResourcePatternType)
	if req.Version == 0 {
		pattern = metadata.ACLPatternLiteral
	}
	f := aclFilter{int8(req.ResourceType), req.ResourceName, pattern, req.Principal, req.Host, int8(req.Operation), int8(req.PermissionType)}
	type resKey struct {
		typ     int8
		name    string
		pattern int8
	}
	byRes := map[resKey]int{}
	for _, acl := range a.view.ACLs() {
		if !f.matches(acl) {
			continue
		}
		k := resKey{acl.ResourceType, acl.ResourceName, acl.PatternType}
		i, ok := byRes[k]
		if !ok {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType = kmsg.ACLResourceType(acl.ResourceType)
			r.ResourceName = acl.ResourceName
			r.ResourcePatternType = kmsg.ACLResourcePatternType(acl.PatternType)
			resp.Resources = append(resp.Resources, r)
			i = len(resp.Resources) - 1
			byRes[k] = i
		}
		ra := kmsg.NewDescribeACLsResponseResourceACL()
		ra.Principal = acl.Principal
		ra.Host = acl.Host
		ra.Operation = kmsg.ACLOperation(acl.Operation)
		ra.PermissionType = kmsg.ACLPermissionType(acl.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, ra)
	}
	return resp, nil
}
