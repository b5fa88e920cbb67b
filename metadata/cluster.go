package metadata

import (
	"context"
	"errors"
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
	if err := s.checkLayout(ctx); err != nil {
		return ClusterInfo{}, err
	}
	return info, nil
}

// ErrOldLayout: the cluster's state in etcd is in a layout this floe
// cannot read.
var ErrOldLayout = errors.New("metadata: the cluster's etcd state is in floe's first layout (per-partition keys), which this version does not read")

// checkLayout refuses a cluster written in floe's first layout, whose
// partition state and index lived in per-partition keys: its topics
// would appear empty here.
func (s *Store) checkLayout(ctx context.Context) error {
	resp, err := s.cli.Get(ctx, s.key(legacyPartitions), clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithLimit(1))
	if err != nil {
		return fmt.Errorf("checking the cluster's layout: %w", err)
	}
	if resp.Count > 0 {
		return fmt.Errorf("%w: start a new cluster (another --cluster name, or a new etcd / floe dev data directory)", ErrOldLayout)
	}
	return nil
}
