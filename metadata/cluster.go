package metadata

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ClusterInfo identifies a cluster. It is written once, by the first agent
// that starts, and never changes.
type ClusterInfo struct {
	V       int       `json:"v"`
	ID      string    `json:"id"` // reported to clients as the Kafka cluster ID
	Created time.Time `json:"created"`
}

// EnsureCluster returns the cluster's identity, creating it if this is the
// first start.
func (s *Store) EnsureCluster(ctx context.Context) (ClusterInfo, error) {
	key := s.key(keyCluster)
	// Kafka cluster IDs are 22-character URL-safe base64 UUIDs; any string
	// works for clients, and a UUID keeps it unique.
	fresh := ClusterInfo{V: 1, ID: uuid.NewString(), Created: time.Now().UTC()}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encode(fresh))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("creating cluster identity: %w", err)
	}
	if resp.Succeeded {
		return fresh, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return ClusterInfo{}, fmt.Errorf("reading cluster identity: %w", ErrConflict)
	}
	var info ClusterInfo
	if err := decode(key, kvs[0].Value, &info); err != nil {
		return ClusterInfo{}, err
	}
	return info, nil
}
