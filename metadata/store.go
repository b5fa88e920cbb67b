package metadata

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DialConfig says how to reach etcd.
type DialConfig struct {
	Endpoints   []string
	DialTimeout time.Duration // zero means 5s
	Username    string
	Password    string
	TLS         *tls.Config
}

// Dial connects to etcd and checks, within the dial timeout, that it
// answers. The error names the endpoints and says what failed in one line.
func Dial(ctx context.Context, cfg DialConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoints given")
	}
	timeout := cfg.DialTimeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          timeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Username:             cfg.Username,
		Password:             cfg.Password,
		TLS:                  cfg.TLS,
		Logger:               zap.NewNop(),
		// Commits carry many index entries.
		MaxCallSendMsgSize: 16 << 20,
		MaxCallRecvMsgSize: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := cli.Get(pctx, "/floe/health", clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("etcd at %s: not reachable within %s", strings.Join(cfg.Endpoints, ","), timeout)
		}
		return nil, fmt.Errorf("etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}

// Store reads and writes one floe cluster's state in etcd. It is safe for
// concurrent use.
type Store struct {
	cli  *clientv3.Client
	root string // "/floe/<cluster>/"

	// entries is the log entry encoding the store writes, as the
	// cluster's record says (logEntryVersion).
	entries struct {
		mu   sync.Mutex
		v    int
		read time.Time
	}
}

// NewStore returns a Store for the named cluster. The cluster name becomes
// part of every key, so clusters sharing an etcd never see each other.
func NewStore(cli *clientv3.Client, cluster string) (*Store, error) {
	if err := validateClusterName(cluster); err != nil {
		return nil, err
	}
	return &Store{cli: cli, root: "/floe/" + cluster + "/"}, nil
}

func validateClusterName(name string) error {
	if name == "" {
		return errors.New("metadata: cluster name is empty")
	}
	if len(name) > 128 {
		return errors.New("metadata: cluster name is longer than 128 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("metadata: cluster name %q may only contain letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}

// Client is the underlying etcd client.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Root is the key prefix of this cluster, ending in "/".
func (s *Store) Root() string { return s.root }

// Key prefixes below the cluster root. docs/design.md explains each.
const (
	keyCluster     = "cluster"
	keyPeerSecret  = "peer-secret" // peers.go
	prefixAgents   = "agents/"
	prefixTopics   = "topics/"
	prefixProducer = "producer-ids"
	prefixTxns     = "txns/" // transaction coordinator state: transactions.go
	// Groups with offsets in transactions: txn_groups.go.
	// Shard logs, log starts and producer snapshots: shards.go.

	// legacyPartitions is where floe's first layout kept partition
	// state; a cluster holding it is refused (CheckLayout).
	legacyPartitions = "partitions/"
)

func (s *Store) key(parts ...string) string {
	return s.root + strings.Join(parts, "")
}

// encode marshals a metadata value. Values are JSON so that etcdctl shows
// them readably; each carries a version field "v".
func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only types defined in this package are encoded; they always
		// marshal.
		panic(fmt.Sprintf("metadata: encoding %T: %v", v, err))
	}
	return string(b)
}

// decode unmarshals a metadata value, wrapping failures in ErrCorruptValue
// with the key so the log names what is broken.
func decode(key string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorruptValue, key, err)
	}
	return nil
}

// rangePages reads [from, end) in pages of pageSize keys.
func (s *Store) rangePages(ctx context.Context, from, end string, fn func(key string, value []byte, modRev int64) error) error {
	return s.rangePagesAt(ctx, from, end, 0, fn)
}

// rangePagesAt is rangePages at revision rev (0: the latest), so that
// every page sees the keys as one earlier read did.
func (s *Store) rangePagesAt(ctx context.Context, from, end string, rev int64, fn func(key string, value []byte, modRev int64) error) error {
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, from, opts...)
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			if err := fn(string(kv.Key), kv.Value, kv.ModRevision); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}
