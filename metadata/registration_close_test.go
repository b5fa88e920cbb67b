package metadata_test

import (
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
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
