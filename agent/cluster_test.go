package agent_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestLeadersSpreadAndMoveWhenAgentLeaves(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(nil)
	a1 := c.addAgent(nil)
	ctx := testCtx(t)

	// A topic created through one agent is visible through the other at
	// once.
	adm0 := kadm.NewClient(c.clientAt(a0.Addr()))
	adm1 := kadm.NewClient(c.clientAt(a1.Addr()))
	if _, err := adm0.CreateTopic(ctx, 16, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	details, err := adm1.ListTopics(ctx, "spread")
	if err != nil || details["spread"].Err != nil || len(details["spread"].Partitions) != 16 {
		t.Fatalf("via the other agent: %v %+v", err, details["spread"])
	}

	var meta kadm.Metadata
	waitUntil(t, func() bool {
		meta, err = adm1.Metadata(ctx, "spread")
		return err == nil && len(meta.Brokers) == 2
	}, "both agents listed")
	leaders := map[int32]int{}
	for _, p := range meta.Topics["spread"].Partitions {
		leaders[p.Leader]++
		if len(p.Replicas) != 1 || p.Replicas[0] != p.Leader {
			t.Fatalf("replicas %v for leader %d", p.Replicas, p.Leader)
		}
	}
	if leaders[a0.NodeID()] == 0 || leaders[a1.NodeID()] == 0 {
		t.Fatalf("leaders all on one agent: %v", leaders)
	}

	// Draining a0 deregisters it; every partition moves to a1.
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := a0.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		meta, err = adm1.Metadata(ctx, "spread")
		if err != nil || len(meta.Brokers) != 1 {
			return false
		}
		for _, p := range meta.Topics["spread"].Partitions {
			if p.Leader != a1.NodeID() {
				return false
			}
		}
		return true
	}, "all leaders on the remaining agent")
}

func (c *testCluster) clientAt(addr string, opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(15 * time.Second)}, c.clientOpts()...), opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
