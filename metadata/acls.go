package metadata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Kafka's ACL codes, as the Kafka protocol numbers them.
const (
	ACLResourceAny             int8 = 1
	ACLResourceTopic           int8 = 2
	ACLResourceGroup           int8 = 3
	ACLResourceCluster         int8 = 4
	ACLResourceTransactionalID int8 = 5

	ACLPatternAny      int8 = 1
	ACLPatternMatch    int8 = 2
	ACLPatternLiteral  int8 = 3
	ACLPatternPrefixed int8 = 4

	ACLOpAny             int8 = 1
	ACLOpAll             int8 = 2
	ACLOpRead            int8 = 3
	ACLOpWrite           int8 = 4
	ACLOpCreate          int8 = 5
	ACLOpDelete          int8 = 6
	ACLOpAlter           int8 = 7
	ACLOpDescribe        int8 = 8
	ACLOpClusterAction   int8 = 9
	ACLOpDescribeConfigs int8 = 10
	ACLOpAlterConfigs    int8 = 11
	ACLOpIdempotentWrite int8 = 12

	ACLPermissionAny   int8 = 1
	ACLPermissionDeny  int8 = 2
	ACLPermissionAllow int8 = 3
)

// ACL is one Kafka ACL binding: principal P is allowed (or denied)
// operation O on resources matching (type, name, pattern) from host H.
type ACL struct {
	ResourceType int8   `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  int8   `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

// Validate checks that a binding is concrete (no ANY/MATCH wildcards,
// which only filters may use).
func (a ACL) Validate() error {
	switch {
	case a.ResourceType < ACLResourceTopic || a.ResourceType > ACLResourceTransactionalID:
		return fmt.Errorf("metadata: ACL resource type %d is not topic, group, cluster or transactional id", a.ResourceType)
	case a.PatternType != ACLPatternLiteral && a.PatternType != ACLPatternPrefixed:
		return fmt.Errorf("metadata: ACL pattern type %d is not literal or prefixed", a.PatternType)
	case a.Operation < ACLOpAll || a.Operation > ACLOpIdempotentWrite:
		return fmt.Errorf("metadata: ACL operation %d is not valid", a.Operation)
	case a.Permission != ACLPermissionAllow && a.Permission != ACLPermissionDeny:
		return fmt.Errorf("metadata: ACL permission %d is not allow or deny", a.Permission)
	case a.ResourceName == "":
		return fmt.Errorf("metadata: ACL needs a resource name")
	case !strings.Contains(a.Principal, ":"):
		return fmt.Errorf("metadata: ACL principal %q must look like User:NAME", a.Principal)
	case a.Host == "":
		return fmt.Errorf("metadata: ACL needs a host (* for any)")
	case a.ResourceType == ACLResourceCluster && a.ResourceName != "kafka-cluster":
		return fmt.Errorf("metadata: the cluster resource is named kafka-cluster, not %q", a.ResourceName)
	}
	return nil
}

// id is the binding's key: the same binding always has the same key, so
// creating it twice stores it once.
func (a ACL) id() string {
	sum := sha256.Sum256([]byte(encode(a)))
	return hex.EncodeToString(sum[:16])
}

func (s *Store) aclKey(a ACL) string { return s.key("acls/", a.id()) }

// CreateACLs stores bindings and returns the etcd revision of the write.
// Storing an existing binding again is not an error.
func (s *Store) CreateACLs(ctx context.Context, acls []ACL, maxOps int) (int64, error) {
	for _, a := range acls {
		if err := a.Validate(); err != nil {
			return 0, err
		}
	}
	if maxOps < 1 {
		maxOps = 128
	}
	var rev int64
	for lo := 0; lo < len(acls); lo += maxOps {
		hi := min(lo+maxOps, len(acls))
		var ops []clientv3.Op
		for _, a := range acls[lo:hi] {
			ops = append(ops, clientv3.OpPut(s.aclKey(a), encode(a)))
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return rev, fmt.Errorf("creating ACLs: %w", err)
		}
		rev = resp.Header.Revision
	}
	return rev, nil
}

// ListACLs returns every binding.
func (s *Store) ListACLs(ctx context.Context) ([]ACL, int64, error) {
	prefix := s.key("acls/")
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing ACLs: %w", err)
	}
	out := make([]ACL, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var a ACL
		if err := decode(string(kv.Key), kv.Value, &a); err != nil {
			return nil, 0, err
		}
		out = append(out, a)
	}
	return out, resp.Header.Revision, nil
}

// DeleteACLs removes the bindings match selects and returns them with the
// revision of the last deletion. Each deletion compares the binding's
// key, so a binding is reported deleted by exactly one caller.
func (s *Store) DeleteACLs(ctx context.Context, match func(ACL) bool) ([]ACL, int64, error) {
	prefix := s.key("acls/")
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing ACLs: %w", err)
	}
	rev := resp.Header.Revision
	var deleted []ACL
	for _, kv := range resp.Kvs {
		var a ACL
		if err := decode(string(kv.Key), kv.Value, &a); err != nil {
			return nil, 0, err
		}
		if !match(a) {
			continue
		}
		key := string(kv.Key)
		tresp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
			Then(clientv3.OpDelete(key)).
			Commit()
		if err != nil {
			return deleted, rev, fmt.Errorf("deleting ACL: %w", err)
		}
		if tresp.Succeeded {
			deleted = append(deleted, a)
			rev = tresp.Header.Revision
		}
	}
	return deleted, rev, nil
}
