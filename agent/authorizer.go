package agent

import (
	"net"
	"slices"
	"strings"

	"github.com/floe-io/floe/metadata"
)

// authorizer decides requests with Kafka's ACL model: bindings from etcd
// (followed by the view), deny winning over allow, literal and prefixed
// resource patterns, "*" for any name, principal or host, and Kafka's
// implied operations (READ, WRITE, DELETE or ALTER imply DESCRIBE;
// ALTER_CONFIGS implies DESCRIBE_CONFIGS). Super users bypass ACLs. A
// resource no ACL names is allowed only with --allow-everyone-if-no-acl-found.

// clusterResource is the name of the one cluster resource.
const clusterResource = "kafka-cluster"

// authorized reports whether the connection's principal may perform op on
// the resource.
func (a *Agent) authorized(c *conn, op, resourceType int8, name string) bool {
	sec := &a.cfg.Security
	if !sec.Authorize {
		return true
	}
	principal := c.auth.principal
	if slices.Contains(sec.SuperUsers, principal) {
		return true
	}
	host, _, err := net.SplitHostPort(c.remote)
	if err != nil {
		host = c.remote
	}
	resourceNamed := false
	allowed := false
	for _, acl := range a.view.ACLs() {
		if acl.ResourceType != resourceType || !aclNameMatches(acl, name) {
			continue
		}
		resourceNamed = true
		if acl.Principal != principal && acl.Principal != "User:*" {
			continue
		}
		if acl.Host != "*" && acl.Host != host {
			continue
		}
		switch acl.Permission {
		case metadata.ACLPermissionDeny:
			// Deny wins, and a denied operation also denies what implies
			// it only for that operation itself (as Kafka).
			if acl.Operation == op || acl.Operation == metadata.ACLOpAll {
				return false
			}
		case metadata.ACLPermissionAllow:
			if aclOpGrants(acl.Operation, op) {
				allowed = true
			}
		}
	}
	if allowed {
		return true
	}
	return !resourceNamed && sec.AllowEveryoneIfNoACL
}

func aclNameMatches(acl metadata.ACL, name string) bool {
	switch acl.PatternType {
	case metadata.ACLPatternLiteral:
		return acl.ResourceName == name || acl.ResourceName == "*"
	case metadata.ACLPatternPrefixed:
		return strings.HasPrefix(name, acl.ResourceName)
	}
	return false
}

// aclOpGrants reports whether an ACL for granted allows op.
func aclOpGrants(granted, op int8) bool {
	if granted == op || granted == metadata.ACLOpAll {
		return true
	}
	switch op {
	case metadata.ACLOpDescribe:
		return granted == metadata.ACLOpRead || granted == metadata.ACLOpWrite || granted == metadata.ACLOpDelete || granted == metadata.ACLOpAlter
	case metadata.ACLOpDescribeConfigs:
		return granted == metadata.ACLOpAlterConfigs
	}
	return false
}

// authorizedTopic is authorized for a topic resource.
func (a *Agent) authorizedTopic(c *conn, op int8, topic string) bool {
	return a.authorized(c, op, metadata.ACLResourceTopic, topic)
}

// authorizedGroup is authorized for a group resource.
func (a *Agent) authorizedGroup(c *conn, op int8, group string) bool {
	return a.authorized(c, op, metadata.ACLResourceGroup, group)
}

// authorizedCluster is authorized for the cluster resource.
func (a *Agent) authorizedCluster(c *conn, op int8) bool {
	return a.authorized(c, op, metadata.ACLResourceCluster, clusterResource)
}

// mayWriteAnyTopic reports whether some ACL lets the principal write to
// some topic: since Kafka 2.8 that suffices for idempotent producers.
func (a *Agent) mayWriteAnyTopic(c *conn) bool {
	if !a.cfg.Security.Authorize || slices.Contains(a.cfg.Security.SuperUsers, c.auth.principal) {
		return true
	}
	for _, acl := range a.view.ACLs() {
		if acl.ResourceType == metadata.ACLResourceTopic && acl.Permission == metadata.ACLPermissionAllow &&
			(acl.Principal == c.auth.principal || acl.Principal == "User:*") && aclOpGrants(acl.Operation, metadata.ACLOpWrite) {
			return true
		}
	}
	return false
}

// mayCreateTopic: CREATE on the cluster or on the topic.
func (a *Agent) mayCreateTopic(c *conn, topic string) bool {
	return a.authorizedCluster(c, metadata.ACLOpCreate) || a.authorizedTopic(c, metadata.ACLOpCreate, topic)
}
