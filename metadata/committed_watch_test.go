package metadata_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
)

// The follower delivers the stored offsets, then every commit and
// deletion, with group names that need escaping.
func TestFollowOffsets(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	sess := lease(t, s)
	const g = "billing/eu"
	claim, _, _, err := s.ClaimGroup(ctx, g, metadata.GroupOwner{AgentID: "a"}, sess.Lease())
	if err != nil {
		t.Fatal(err)
	}
	commit := func(topic string, part int32, off int64) {
		t.Helper()
		o := metadata.CommittedOffset{Topic: topic, Partition: part, Offset: off, LeaderEpoch: -1, Committed: time.Now().UnixMilli()}
		if _, err := s.CommitOffsets(ctx, claim, nil, []metadata.CommittedOffset{o}, 128); err != nil {
			t.Fatal(err)
		}
	}
	commit("orders", 0, 5)

	var (
		mu   sync.Mutex
		got  []metadata.OffsetChange
		full int
	)
	fctx, cancel := context.WithCancel(ctx)
	f, err := s.FollowOffsets(fctx, slog.New(slog.DiscardHandler), func(changes []metadata.OffsetChange, isFull bool) {
		mu.Lock()
		defer mu.Unlock()
		if isFull {
			full++
		}
		got = append(got, changes...)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); f.Wait() })

	commit("orders", 1, 7)
	commit("orders", 0, 9)
	if err := s.DeleteOffsets(ctx, claim, []metadata.TopicPartition{{Topic: "orders", Partition: 1}}, 128); err != nil {
		t.Fatal(err)
	}
	want := []string{"billing/eu orders/0 5 false", "billing/eu orders/1 7 false", "billing/eu orders/0 9 false", "billing/eu orders/1 0 true"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		var have []string
		for _, c := range got {
			have = append(have, fmt.Sprintf("%s %s/%d %d %v", c.Group, c.Offset.Topic, c.Offset.Partition, c.Offset.Offset, c.Deleted))
		}
		nfull := full
		mu.Unlock()
		if len(have) == len(want) {
			for i := range want {
				if have[i] != want[i] {
					t.Fatalf("changes %q, want %q", have, want)
				}
			}
			if nfull != 1 {
				t.Fatalf("%d full loads, want 1", nfull)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes %q, want %q", have, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
