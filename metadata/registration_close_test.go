package metadata_test

import (
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Closing a registration whose lease etcd already dropped (etcd was
// unreachable for longer than the TTL) is not an error: the agent is
// deregistered already. The fault suite (tests/fault) found agents
// exiting 1 after a clean SIGTERM drain because Close reported etcd's
// "requested lease not found".
func TestClosingALostRegistrationSucceeds(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	r, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "x", Host: "h", Port: 1}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().Revoke(ctx, r.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("registration did not report its lost lease")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("closing a registration whose lease is gone: %v", err)
	}
}

// A withdrawn registration is gone from the agent list (other agents stop
// naming it) while its lease, and keys written under it, live on until
// Close; a node ID withdrawn can be claimed by a new agent meanwhile, and
// withdrawing again does not delete the new agent's key.
func TestWithdrawnRegistrationKeepsItsLease(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	r, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "old", Host: "h", Port: 1}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	claim := "/withdraw-test/claim"
	if _, err := s.Client().Put(ctx, claim, "x", clientv3.WithLease(r.Lease())); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	agents, err := s.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 0 {
		t.Fatalf("after withdrawing, agents %+v", agents)
	}
	if resp, err := s.Client().Get(ctx, claim); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("a key under the withdrawn registration's lease: %v, %v", resp, err)
	}
	n, err := s.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "new", Host: "h", Port: 2}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if n.Info().NodeID != r.Info().NodeID {
		t.Fatalf("new agent claimed node %d, want the withdrawn %d", n.Info().NodeID, r.Info().NodeID)
	}
	if _, err := r.Withdraw(ctx); err != nil {
		t.Fatal(err)
	}
	if agents, err := s.Agents(ctx); err != nil || len(agents) != 1 || agents[0].AgentID != "new" {
		t.Fatalf("withdrawing twice: agents %+v, %v", agents, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Client().Get(ctx, claim); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("a key under a closed registration's lease: %v, %v", resp, err)
	}
}
