package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// A group whose coordination moves away and straight back: a request that
// arrives while the agent releases the group's claim must end with the
// agent holding a claim in etcd, not with the agent serving the group under
// a claim the release deleted (which would let a second agent claim it and
// coordinate it too).
func TestGroupMovedAndBackKeepsItsClaim(t *testing.T) {
	cli := testenv.Etcd(t)
	store, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, testenv.BucketURL(t), testenv.BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	a, err := New(Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second},
		Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if _, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "t", Partitions: 1, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	// A group that a second agent (node 1, the next free ID) would
	// coordinate.
	var group string
	for i := 0; group == ""; i++ {
		g := fmt.Sprintf("g%d", i)
		if l, _ := metadata.Leader([]metadata.AgentInfo{{NodeID: a.NodeID()}, {NodeID: a.NodeID() + 1}}, metadata.GroupKey(g)); l.NodeID != a.NodeID() {
			group = g
		}
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(a.ListenerAddr(ProtocolPlaintext)))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	adm := kadm.NewClient(kc)
	commit := func(offset int64) error {
		var o kadm.Offsets
		o.AddOffset("t", 0, offset, -1)
		resp, err := adm.CommitOffsets(ctx, group, o)
		if err != nil {
			return err
		}
		return resp.Error()
	}
	if err := commit(1); err != nil {
		t.Fatalf("first commit: %v", err)
	}

	// Another agent registers: the group moves to it. Just before this
	// agent releases the group's claim, the other agent goes away (the
	// group moves back) and a commit arrives.
	registered := make(chan *metadata.Registration, 1)
	released := make(chan error, 1) // the commit made while releasing
	hookDone := make(chan struct{})
	var once sync.Once
	hook := func(c metadata.GroupClaim) {
		if c.Group != group {
			return
		}
		once.Do(func() {
			defer close(hookDone)
			if err := (<-registered).Close(); err != nil {
				released <- err
				return
			}
			for !a.groups.isCoordinator(group) {
				if ctx.Err() != nil {
					released <- ctx.Err()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			done := make(chan error, 1)
			go func() { done <- commit(2) }()
			select {
			case err := <-done:
				released <- err
			case <-time.After(2 * time.Second):
				// The commit waits for the release (the group's lock).
				go func() { released <- <-done }()
			}
		})
	}
	a.groups.beforeRelease.Store(&hook)
	other, err := store.RegisterAgent(ctx, metadata.AgentInfo{AgentID: "other", Host: "127.0.0.1", Port: 1}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	registered <- other
	select {
	case err := <-released:
		if err != nil {
			t.Fatalf("commit while the group was released: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the group was never released, or the commit made meanwhile never finished")
	}
	<-hookDone
	a.groups.beforeRelease.Store(nil)

	// The agent serves the group, under a claim no other agent can take
	// (the release right after the hook must not delete it).
	lease, err := cli.Grant(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		_, _, _, err = store.ClaimGroup(ctx, group, metadata.GroupOwner{NodeID: 7, AgentID: "intruder"}, lease.ID)
		if !errors.Is(err, metadata.ErrGroupOwned) {
			t.Fatalf("another agent claiming the group this agent coordinates: %v; want ErrGroupOwned (the agent's claim was deleted under it)", err)
		}
	}
	if err := commit(3); err != nil {
		t.Fatalf("commit after the group came back: %v", err)
	}
}
