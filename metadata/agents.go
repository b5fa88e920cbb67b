package metadata

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// AgentInfo is what a live agent publishes about itself.
type AgentInfo struct {
	V int `json:"v"`
	// NodeID is the Kafka broker ID clients see. It is claimed at
	// registration: the lowest ID no live agent holds.
	NodeID int32 `json:"node_id"`
	// AgentID is unique per agent process start.
	AgentID string `json:"agent_id"`
	Host    string `json:"host"`
	Port    int32  `json:"port"`
	// Listeners maps a security protocol (PLAINTEXT, SASL_SSL, ...) to the
	// host:port clients of that listener connect to. Host and Port are the
	// first listener's.
	Listeners map[string]string `json:"listeners,omitempty"`
	Zone      string            `json:"zone,omitempty"`
	// Peer is the host:port of the agent's peer listener, where agents of
	// its zone read object ranges it owns (its share of the zone's read
	// cache); empty when it shares none.
	Peer    string    `json:"peer,omitempty"`
	Started time.Time `json:"started"`
	Version string    `json:"version,omitempty"`
	// MaxCommitDelay is the longest the agent may commit a flush after
	// writing its object (older flushes fail instead). The compactor keeps
	// unreferenced objects at least this long (see compactor's grace).
	MaxCommitDelay time.Duration `json:"max_commit_delay,omitempty"`
}

// Addr is host:port.
func (a AgentInfo) Addr() string { return fmt.Sprintf("%s:%d", a.Host, a.Port) }

// Endpoint returns the host and port clients of the protocol's listener
// connect to, falling back to the first listener's.
func (a AgentInfo) Endpoint(protocol string) (string, int32) {
	if hp, ok := a.Listeners[protocol]; ok {
		host, port, err := net.SplitHostPort(hp)
		if p, perr := strconv.ParseInt(port, 10, 32); err == nil && perr == nil {
			return host, int32(p)
		}
	}
	return a.Host, a.Port
}

// MaxNodeID bounds the node IDs agents claim.
const MaxNodeID = 1 << 20

// Registration is an agent's lease-backed presence in etcd. When the lease
// lapses (the agent died or lost etcd for longer than the TTL) the agent's
// key disappears and other agents stop naming it as a leader.
type Registration struct {
	session *concurrency.Session
	info    AgentInfo
	key     string
}

// RegisterAgent grants a lease of ttl, claims the lowest free node ID, and
// publishes info under it. The lease is kept alive until Close or until
// it is lost (see Done).
func (s *Store) RegisterAgent(ctx context.Context, info AgentInfo, ttl time.Duration) (*Registration, error) {
	secs := int(ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	// Grant under ctx, so a caller's timeout bounds it (etcd down); the
	// session then keeps the lease alive until closed.
	lease, err := s.cli.Grant(ctx, int64(secs))
	if err != nil {
		return nil, fmt.Errorf("granting agent lease: %w", err)
	}
	session, err := concurrency.NewSession(s.cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(secs), concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return nil, fmt.Errorf("keeping agent lease alive: %w", err)
	}
	for id := int32(0); id < MaxNodeID; id++ {
		info.NodeID = id
		info.V = 1
		key := s.agentKey(id)
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, encode(info), clientv3.WithLease(session.Lease()))).
			Commit()
		if err != nil {
			session.Close()
			return nil, fmt.Errorf("registering agent: %w", err)
		}
		if resp.Succeeded {
			return &Registration{session: session, info: info, key: key}, nil
		}
	}
	session.Close()
	return nil, errors.New("registering agent: no free node ID")
}

// Agents lists the live agents, by node ID.
func (s *Store) Agents(ctx context.Context) ([]AgentInfo, error) {
	agents, _, err := s.listAgents(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]AgentInfo, 0, len(agents))
	for _, a := range agents {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b AgentInfo) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return out, nil
}

// listAgents reads the live agents and the revision read at. Registrations
// that do not decode are left out and passed to bad, if set.
func (s *Store) listAgents(ctx context.Context, bad func(error)) (map[int32]AgentInfo, int64, error) {
	prefix := s.key(prefixAgents)
	resp, err := s.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("listing agents: %w", err)
	}
	agents := make(map[int32]AgentInfo, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if a, err := s.decodeAgent(kv); err == nil {
			agents[a.NodeID] = a
		} else if bad != nil {
			bad(err)
		}
	}
	return agents, resp.Header.Revision, nil
}

// decodeAgent decodes a registration, checking it against its key.
func (s *Store) decodeAgent(kv *mvccpb.KeyValue) (AgentInfo, error) {
	var a AgentInfo
	if err := decode(string(kv.Key), kv.Value, &a); err != nil {
		return a, err
	}
	id, ok := parseNodeID(strings.TrimPrefix(string(kv.Key), s.key(prefixAgents)))
	if !ok || id != a.NodeID || a.Host == "" || a.Port <= 0 {
		return a, fmt.Errorf("agent registration %s does not match its key or has no address", kv.Key)
	}
	return a, nil
}

func (s *Store) agentKey(id int32) string {
	return s.key(prefixAgents, fmt.Sprintf("%08d", id))
}

// Info is what was published, with the claimed node ID.
func (r *Registration) Info() AgentInfo { return r.info }

// Lease is the registration's etcd lease; keys written with it vanish with
// the agent.
func (r *Registration) Lease() clientv3.LeaseID { return r.session.Lease() }

// Done is closed when the lease is lost.
func (r *Registration) Done() <-chan struct{} { return r.session.Done() }

// Withdraw deletes the agent's registration while keeping its lease, so
// other agents stop naming it (as a partition leader or a coordinator)
// while keys it holds under the lease, such as group claims, stay until
// released or until Close. It does nothing if the key is no longer this
// registration's. It returns the revision of the deletion, which a View
// has applied once WaitAgentsRevision returns.
func (r *Registration) Withdraw(ctx context.Context) (int64, error) {
	cli := r.session.Client()
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", r.session.Lease())).
		Then(clientv3.OpDelete(r.key)).
		Commit()
	if err != nil {
		return 0, fmt.Errorf("withdrawing agent registration: %w", err)
	}
	return resp.Header.Revision, nil
}

// Close revokes the lease, removing the agent at once rather than after
// the TTL. A lease etcd already dropped (it was unreachable for longer than
// the TTL) is not an error: the agent is deregistered already.
func (r *Registration) Close() error {
	err := r.session.Close()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return nil
	}
	return err
}

func parseNodeID(s string) (int32, bool) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err == nil && n >= 0
}
