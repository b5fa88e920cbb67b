package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ClusterInfo identifies a cluster. It is written by the first agent that
// starts; only LogEntryVersion changes after (FinalizeLogEntryVersion).
type ClusterInfo struct {
	V       int       `json:"v"`
	ID      string    `json:"id"` // reported to clients as the Kafka cluster ID
	Created time.Time `json:"created"`
	// LogEntryVersion is the shard log entry encoding the cluster's agents
	// and compactor write (metadata/FORMAT.md); 0, in a record written
	// before version 3, means 2. A cluster created now writes the newest;
	// an older one keeps the encoding its oldest release reads until it is
	// finalized, so agents of that release can still read every entry
	// while a rolling update replaces them.
	LogEntryVersion int `json:"log_entry_version,omitempty"`
}

// EntryVersion is the log entry encoding the cluster writes.
func (c ClusterInfo) EntryVersion() int {
	if c.LogEntryVersion == 0 {
		return entryVersionTxn
	}
	return c.LogEntryVersion
}

// LatestLogEntryVersion is the newest log entry encoding this floe
// writes.
const LatestLogEntryVersion = entryVersion

// entryVersionRefresh is how long a store writes the log entry encoding
// it last read from the cluster's record before reading it again.
const entryVersionRefresh = time.Minute

// logEntryVersion returns the log entry encoding to write: the cluster
// record's, read again once entryVersionRefresh has passed. A cluster
// with no record yet (no agent has started) writes the newest; one whose
// record cannot be read writes what was read last, or version 2, which
// every release reads.
func (s *Store) logEntryVersion(ctx context.Context) int {
	s.entries.mu.Lock()
	defer s.entries.mu.Unlock()
	if s.entries.v != 0 && time.Since(s.entries.read) < entryVersionRefresh {
		return s.entries.v
	}
	info, _, err := s.readCluster(ctx)
	switch {
	case errors.Is(err, ErrNoCluster):
		s.entries.v = entryVersion
	case err != nil && s.entries.v != 0:
		return s.entries.v
	case err != nil:
		return entryVersionTxn
	default:
		s.entries.v = min(info.EntryVersion(), entryVersion)
	}
	s.entries.read = time.Now()
	return s.entries.v
}

// setLogEntryVersion records the cluster's encoding, just read.
func (s *Store) setLogEntryVersion(info ClusterInfo) {
	s.entries.mu.Lock()
	defer s.entries.mu.Unlock()
	s.entries.v, s.entries.read = min(info.EntryVersion(), entryVersion), time.Now()
}

// encodeEntry encodes e as the cluster writes entries.
func (s *Store) encodeEntry(ctx context.Context, e *LogEntry) []byte {
	return e.EncodeVersion(s.logEntryVersion(ctx))
}

// Cluster reads the cluster's record; it is ErrNoCluster when no agent
// has started yet.
func (s *Store) Cluster(ctx context.Context) (ClusterInfo, error) {
	info, _, err := s.readCluster(ctx)
	return info, err
}

// readCluster reads the cluster's record and its revision (ErrNoCluster
// when there is none).
func (s *Store) readCluster(ctx context.Context) (info ClusterInfo, modRev int64, err error) {
	key := s.key(keyCluster)
	resp, err := s.cli.Get(ctx, key)
	if err != nil {
		return ClusterInfo{}, 0, fmt.Errorf("reading the cluster's record: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return ClusterInfo{}, 0, ErrNoCluster
	}
	if err := decode(key, resp.Kvs[0].Value, &info); err != nil {
		return ClusterInfo{}, 0, err
	}
	return info, resp.Kvs[0].ModRevision, nil
}

// ErrNoCluster: the cluster has no record yet (no agent has started).
var ErrNoCluster = errors.New("metadata: the cluster has no record yet (start an agent first)")

// FinalizeLogEntryVersion makes the cluster write log entries in
// encoding v from now on (agents and the compactor switch within
// entryVersionRefresh). Every agent and compactor of the cluster must
// already run a release that reads v: older ones fail to read the
// entries written after. It never lowers the version: a version below the
// cluster's, or above what this floe writes, is refused. It returns the
// record after.
func (s *Store) FinalizeLogEntryVersion(ctx context.Context, v int) (ClusterInfo, error) {
	if v < entryVersionTxn || v > entryVersion {
		return ClusterInfo{}, fmt.Errorf("metadata: log entry version %d: this floe writes %d to %d", v, entryVersionTxn, entryVersion)
	}
	key := s.key(keyCluster)
	for {
		info, rev, err := s.readCluster(ctx)
		if err != nil {
			return ClusterInfo{}, err
		}
		switch cur := info.EntryVersion(); {
		case cur == v:
			return info, nil
		case cur > v:
			return info, fmt.Errorf("metadata: the cluster writes log entry version %d already; versions are never lowered", cur)
		}
		info.LogEntryVersion = v
		txn, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, encode(info))).
			Commit()
		if err != nil {
			return ClusterInfo{}, fmt.Errorf("finalizing log entry version %d: %w", v, err)
		}
		if txn.Succeeded {
			s.setLogEntryVersion(info)
			return info, nil
		}
	}
}

// EnsureCluster returns the cluster's identity, creating it if this is the
// first start.
func (s *Store) EnsureCluster(ctx context.Context) (ClusterInfo, error) {
	key := s.key(keyCluster)
	// Kafka cluster IDs are 22-character URL-safe base64 UUIDs; any string
	// works for clients, and a UUID keeps it unique.
	fresh := ClusterInfo{V: 1, ID: uuid.NewString(), Created: time.Now().UTC(), LogEntryVersion: entryVersion}
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, encode(fresh))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return ClusterInfo{}, fmt.Errorf("creating cluster identity: %w", err)
	}
	if resp.Succeeded {
		s.setLogEntryVersion(fresh)
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
	s.setLogEntryVersion(info)
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
