package metadata_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/floe-io/floe/metadata"
)

// lease grants a lease for a fake agent; revoke it to simulate the agent
// dying.
func lease(t *testing.T, s *metadata.Store) *concurrency.Session {
	t.Helper()
	sess, err := concurrency.NewSession(s.Client(), concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

func TestGroupClaimsFenceWrites(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	a, b := lease(t, s), lease(t, s)
	ownerA := metadata.GroupOwner{NodeID: 0, AgentID: "a"}
	ownerB := metadata.GroupOwner{NodeID: 1, AgentID: "b"}
	const g = "orders/eu%1" // '/' and '%' must not leak into the key layout

	claimA, st, found, err := s.ClaimGroup(ctx, g, ownerA, a.Lease())
	if err != nil || found || st.State != metadata.GroupEmpty {
		t.Fatalf("first claim: %v found=%v state=%q", err, found, st.State)
	}
	// Claiming again under the same lease returns the same claim.
	again, _, _, err := s.ClaimGroup(ctx, g, ownerA, a.Lease())
	if err != nil || again.Rev != claimA.Rev {
		t.Fatalf("reclaim: %v rev %d, want %d", err, again.Rev, claimA.Rev)
	}
	if _, _, _, err := s.ClaimGroup(ctx, g, ownerB, b.Lease()); !errors.Is(err, metadata.ErrGroupOwned) {
		t.Fatalf("claim held by another agent: %v", err)
	}

	want := metadata.GroupState{
		State:        metadata.GroupStable,
		Generation:   7,
		ProtocolType: "consumer",
		Protocol:     "cooperative-sticky",
		Leader:       "m1",
		StateSince:   time.Now().UnixMilli(),
		Members: []metadata.GroupMember{{
			MemberID: "m1", ClientID: "c", ClientHost: "/127.0.0.1",
			SessionTimeoutMs: 45000, RebalanceTimeoutMs: 60000,
			Protocols:  []metadata.GroupProtocol{{Name: "cooperative-sticky", Metadata: []byte{0, 1, 2, 255}}},
			Assignment: []byte{9, 8, 7},
		}},
	}
	if _, err := s.SaveGroup(ctx, claimA, want); err != nil {
		t.Fatal(err)
	}
	off := []metadata.CommittedOffset{{Topic: "t", Partition: 0, TopicID: uuid.New(), Offset: 42, LeaderEpoch: -1, Committed: 1}}
	if _, err := s.CommitOffsets(ctx, claimA, nil, off, 128); err != nil {
		t.Fatal(err)
	}

	// A dies: its claim vanishes with its lease; B claims and loads.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	claimB, st, found, err := s.ClaimGroup(ctx, g, ownerB, b.Lease())
	if err != nil || !found {
		t.Fatalf("takeover: %v found=%v", err, found)
	}
	if st.Generation != 7 || st.Leader != "m1" || len(st.Members) != 1 || string(st.Members[0].Protocols[0].Metadata) != string([]byte{0, 1, 2, 255}) || string(st.Members[0].Assignment) != string([]byte{9, 8, 7}) {
		t.Fatalf("loaded %+v", st)
	}

	// A's stale claim can no longer write anything.
	if _, err := s.SaveGroup(ctx, claimA, want); !errors.Is(err, metadata.ErrGroupClaimLost) {
		t.Fatalf("stale save: %v", err)
	}
	if _, err := s.CommitOffsets(ctx, claimA, nil, off, 128); !errors.Is(err, metadata.ErrGroupClaimLost) {
		t.Fatalf("stale commit: %v", err)
	}
	if err := s.DeleteGroup(ctx, claimA); !errors.Is(err, metadata.ErrGroupClaimLost) {
		t.Fatalf("stale delete: %v", err)
	}
	// Releasing a stale claim leaves the new one alone.
	if err := s.ReleaseGroup(ctx, claimA); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveGroup(ctx, claimB, st); err != nil {
		t.Fatalf("save through the current claim: %v", err)
	}

	// Listing sees the group by its real name.
	names, err := s.ListGroupNames(ctx)
	if err != nil || len(names) != 1 || names[0] != g {
		t.Fatalf("names %q %v", names, err)
	}
	groups, bad, err := s.ListGroups(ctx)
	if err != nil || len(bad) != 0 || len(groups) != 1 || groups[0].Name != g || groups[0].State != metadata.GroupStable {
		t.Fatalf("groups %+v bad %v err %v", groups, bad, err)
	}

	// Release, then A comes back with a new lease and claims it.
	if err := s.ReleaseGroup(ctx, claimB); err != nil {
		t.Fatal(err)
	}
	a2 := lease(t, s)
	claimA2, _, _, err := s.ClaimGroup(ctx, g, ownerA, a2.Lease())
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if err := s.DeleteGroup(ctx, claimA2); err != nil {
		t.Fatal(err)
	}
	if _, found, err := s.GetGroup(ctx, g); err != nil || found {
		t.Fatalf("after delete: found=%v %v", found, err)
	}
	if offs, _, err := s.FetchOffsets(ctx, g); err != nil || len(offs) != 0 {
		t.Fatalf("offsets after delete: %v %v", offs, err)
	}
}

func TestCommitOffsetsSplitsAcrossTransactions(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	sess := lease(t, s)
	claim, st, _, err := s.ClaimGroup(ctx, "g", metadata.GroupOwner{AgentID: "a"}, sess.Lease())
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	meta := "m"
	var offs []metadata.CommittedOffset
	for i := range 50 {
		offs = append(offs, metadata.CommittedOffset{Topic: fmt.Sprintf("t%d", i%3), Partition: int32(i), TopicID: id, Offset: int64(i * 10), LeaderEpoch: 3, Metadata: &meta, Committed: int64(i)})
	}
	// 8 ops per transaction: the group state and 7 offsets, then 8 at a
	// time.
	n, err := s.CommitOffsets(ctx, claim, &st, offs, 8)
	if err != nil || n != len(offs) {
		t.Fatalf("committed %d: %v", n, err)
	}
	if _, found, err := s.GetGroup(ctx, "g"); err != nil || !found {
		t.Fatalf("group state not stored with the first offsets: %v", err)
	}
	// Keys written in one transaction share a mod revision.
	resp, err := s.Client().Get(ctx, s.Root(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	txns := map[int64]int{}
	for _, kv := range resp.Kvs {
		if strings.Contains(string(kv.Key), "/offsets/") || strings.HasSuffix(string(kv.Key), "/groups/g") {
			txns[kv.ModRevision]++
		}
	}
	if len(txns) != 7 {
		t.Fatalf("51 writes went in %d transactions, want 7 of at most 8: %v", len(txns), txns)
	}
	got, bad, err := s.FetchOffsets(ctx, "g")
	if err != nil || len(bad) != 0 || len(got) != len(offs) {
		t.Fatalf("fetched %d (bad %v): %v", len(got), bad, err)
	}
	byTP := map[metadata.TopicPartition]metadata.CommittedOffset{}
	for _, o := range got {
		byTP[metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o
	}
	for _, w := range offs {
		o := byTP[metadata.TopicPartition{Topic: w.Topic, Partition: w.Partition}]
		if o.Offset != w.Offset || o.LeaderEpoch != 3 || o.Metadata == nil || *o.Metadata != "m" || o.TopicID != id || o.Committed != w.Committed {
			t.Fatalf("%s/%d: got %+v", w.Topic, w.Partition, o)
		}
	}

	var del []metadata.TopicPartition
	for _, o := range offs[:20] {
		del = append(del, metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition})
	}
	if err := s.DeleteOffsets(ctx, claim, del, 8); err != nil {
		t.Fatal(err)
	}
	got, _, _ = s.FetchOffsets(ctx, "g")
	if len(got) != 30 {
		t.Fatalf("%d offsets left, want 30", len(got))
	}
	// Other groups keep their own offsets.
	other, _, _, err := s.ClaimGroup(ctx, "g2", metadata.GroupOwner{AgentID: "a"}, sess.Lease())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitOffsets(ctx, other, nil, offs[:1], 8); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.FetchOffsets(ctx, "g2"); len(got) != 1 {
		t.Fatalf("g2 has %d offsets", len(got))
	}
	if got, _, _ := s.FetchOffsets(ctx, "g"); len(got) != 30 {
		t.Fatalf("g has %d offsets after g2's commit", len(got))
	}
}

func TestDecodeGroupStateRejectsCorruptValues(t *testing.T) {
	for _, v := range []string{
		`not json`,
		`{"v":2,"state":"Empty","generation":0}`,
		`{"v":1,"state":"Bogus","generation":0}`,
		`{"v":1,"state":"Stable","generation":-1}`,
		`{"v":1,"state":"Empty","generation":1,"members":[{"id":"m","session_timeout_ms":1,"rebalance_timeout_ms":1,"protocols":[{"name":"x"}]}]}`,
		`{"v":1,"state":"Stable","generation":1,"members":[{"id":"","session_timeout_ms":1,"rebalance_timeout_ms":1,"protocols":[{"name":"x"}]}]}`,
		`{"v":1,"state":"Stable","generation":1,"members":[{"id":"m","session_timeout_ms":0,"rebalance_timeout_ms":1,"protocols":[{"name":"x"}]}]}`,
		`{"v":1,"state":"Stable","generation":1,"members":[{"id":"m","session_timeout_ms":1,"rebalance_timeout_ms":1,"protocols":[{"name":"x","metadata":"%%%"}]}]}`,
	} {
		if _, err := metadata.DecodeGroupState("k", "g", []byte(v)); !errors.Is(err, metadata.ErrCorruptValue) {
			t.Errorf("%s: err %v, want ErrCorruptValue", v, err)
		}
	}
	ok := `{"v":1,"state":"Stable","generation":3,"members":[{"id":"m","session_timeout_ms":1,"rebalance_timeout_ms":1,"protocols":[{"name":"x","metadata":"AAE="}]}]}`
	st, err := metadata.DecodeGroupState("k", "g", []byte(ok))
	if err != nil || st.Generation != 3 || string(st.Members[0].Protocols[0].Metadata) != "\x00\x01" {
		t.Fatalf("%+v %v", st, err)
	}
}

func FuzzDecodeGroupState(f *testing.F) {
	f.Add([]byte(`{"v":1,"state":"Stable","generation":3,"members":[{"id":"m","session_timeout_ms":1,"rebalance_timeout_ms":1,"protocols":[{"name":"x","metadata":"AAE="}],"assignment":"AQ=="}]}`))
	f.Add([]byte(`{"v":1,"state":"Empty","generation":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := metadata.DecodeGroupState("k", "g", data)
		if err != nil {
			if !errors.Is(err, metadata.ErrCorruptValue) {
				t.Fatalf("error %v does not wrap ErrCorruptValue", err)
			}
			return
		}
		if st.Generation < 0 || st.State == metadata.GroupEmpty && len(st.Members) > 0 {
			t.Fatalf("accepted inconsistent state %+v", st)
		}
	})
}

func FuzzDecodeCommittedOffset(f *testing.F) {
	f.Add([]byte(`{"v":1,"topic_id":"00000000-0000-0000-0000-000000000000","offset":4,"leader_epoch":-1,"committed":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := metadata.DecodeCommittedOffset("k", data); err != nil && !errors.Is(err, metadata.ErrCorruptValue) {
			t.Fatalf("error %v does not wrap ErrCorruptValue", err)
		}
	})
}

// Expiring offsets removes each only if it is unchanged since it was read:
// one a transaction's coordinator committed meanwhile (without the
// group's claim) is kept.
func TestExpireOffsetsKeepsOffsetsCommittedMeanwhile(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	sess := lease(t, s)
	const g = "expiring"
	claim, _, _, err := s.ClaimGroup(ctx, g, metadata.GroupOwner{NodeID: 0, AgentID: "a"}, sess.Lease())
	if err != nil {
		t.Fatal(err)
	}
	old := []metadata.CommittedOffset{
		{Topic: "t", Partition: 0, Offset: 1, LeaderEpoch: -1, Committed: 1},
		{Topic: "t", Partition: 1, Offset: 1, LeaderEpoch: -1, Committed: 1},
	}
	if _, err := s.CommitOffsets(ctx, claim, nil, old, 128); err != nil {
		t.Fatal(err)
	}
	read, _, err := s.FetchOffsets(ctx, g)
	if err != nil || len(read) != 2 {
		t.Fatalf("read %v, %v", read, err)
	}
	if err := s.CommitTxnOffsets(ctx, []metadata.TxnOffset{{Group: g, Topic: "t", Partition: 1, Offset: 9, LeaderEpoch: -1}}, time.Now(), 128); err != nil {
		t.Fatal(err)
	}
	if err := s.ExpireOffsets(ctx, claim, read, 128); err != nil {
		t.Fatal(err)
	}
	left, _, err := s.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Partition != 1 || left[0].Offset != 9 {
		t.Fatalf("after expiry: %+v, want only partition 1's offset 9, committed after the read", left)
	}
}

// FetchOffsetsOf returns the offsets of the partitions asked for only,
// whether it reads their topics one by one or the whole group (many
// topics), and every offset for nil.
func TestFetchOffsetsOf(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	claim, _, _, err := s.ClaimGroup(ctx, "g", metadata.GroupOwner{AgentID: "a"}, lease(t, s).Lease())
	if err != nil {
		t.Fatal(err)
	}
	var offs []metadata.CommittedOffset
	for tp := range 20 {
		for p := range int32(4) {
			// Topic names that share prefixes: "t1" must not read "t10".
			offs = append(offs, metadata.CommittedOffset{Topic: fmt.Sprintf("t%d", tp), Partition: p, TopicID: uuid.New(), Offset: int64(100*tp) + int64(p)})
		}
	}
	if _, err := s.CommitOffsets(ctx, claim, nil, offs, 64); err != nil {
		t.Fatal(err)
	}
	check := func(want map[metadata.TopicPartition]bool, n int) {
		t.Helper()
		got, bad, err := s.FetchOffsetsOf(ctx, "g", want)
		if err != nil || len(bad) != 0 || len(got) != n {
			t.Fatalf("asked for %d partitions: got %d (%v, %v), want %d", len(want), len(got), bad, err, n)
		}
		for _, o := range got {
			var tp int
			fmt.Sscanf(o.Topic, "t%d", &tp)
			if (want != nil && !want[metadata.TopicPartition{Topic: o.Topic, Partition: o.Partition}]) || o.Offset != int64(100*tp)+int64(o.Partition) {
				t.Fatalf("got %s/%d at %d", o.Topic, o.Partition, o.Offset)
			}
		}
	}
	check(nil, len(offs))
	check(map[metadata.TopicPartition]bool{{Topic: "t1", Partition: 0}: true, {Topic: "t1", Partition: 3}: true, {Topic: "t1", Partition: 9}: true}, 2)
	all := map[metadata.TopicPartition]bool{}
	for tp := range 20 {
		all[metadata.TopicPartition{Topic: fmt.Sprintf("t%d", tp), Partition: 1}] = true
	}
	check(all, 20) // more topics than are read one by one
}
