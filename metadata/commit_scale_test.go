package metadata_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/floe-io/floe/metadata"
)

func TestDefaultShardSize(t *testing.T) {
	for n, want := range map[int32]int32{1: 1, 16: 1, 31: 1, 32: 2, 100: 4, 256: 16, 1023: 32, 1024: 64, 4096: 64, 100000: 64} {
		if got := metadata.DefaultShardSize(n); got != want {
			t.Errorf("DefaultShardSize(%d) = %d, want %d", n, got, want)
		}
	}
}

// A flush that touches every partition of a 4096-partition topic is
// committed in a couple of transactions (one log entry per shard), not
// thousands of keys, and every partition gets its offsets.
func TestCommitOfThousandsOfPartitions(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "wide", 4096)
	if tp.ShardSize != 64 || tp.Shards() != 64 {
		t.Fatalf("shard size %d, %d shards", tp.ShardSize, tp.Shards())
	}
	ctx := ctxT(t)
	obs := &recordingObserver{}
	c := s.NewCommitter(metadata.CommitConfig{Observer: obs})
	for round := range 2 {
		apps := make([]metadata.Append, tp.Partitions)
		for p := range tp.Partitions {
			apps[p] = metadata.Append{Topic: tp, Partition: p, Object: fmt.Sprintf("o%d", round), ObjectSize: 1 << 20, Offset: int64(p) * 100, Length: 100, Batches: plain(2)}
		}
		res, err := c.Commit(ctx, apps)
		if err != nil {
			t.Fatal(err)
		}
		for p, r := range res {
			if r.Batches[0].Err != nil || r.Batches[0].BaseOffset != int64(2*round) || r.Entry == nil || r.Entry.Object != apps[p].Object {
				t.Fatalf("round %d partition %d: %+v", round, p, r)
			}
		}
	}
	if n := obs.count(metadata.TxnCommitted); n > 4 {
		t.Fatalf("%d transactions for two flushes over 64 shards", n)
	}
	for _, p := range []int32{0, 63, 64, 4095} {
		st, err := s.GetPartitionState(ctx, tp, p)
		if err != nil || st.Next != 4 {
			t.Fatalf("partition %d: %+v %v", p, st, err)
		}
		e, err := s.PartitionEntries(ctx, tp, p, 3, 0)
		if err != nil || len(e) != 1 || e[0].Object != "o1" || e[0].First != 2 || e[0].Offset != int64(p)*100 || e[0].ObjectSize != 1<<20 {
			t.Fatalf("partition %d entries %+v %v", p, e, err)
		}
	}
}

// Commits stay within etcd's request size: a flush whose log entries
// would exceed it is split into several transactions (a shard's share
// into consecutive entries), and a single partition's share too large for
// any request fails alone.
func TestCommitSplitsByRequestBytes(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "bytes", 64) // shards of 4
	ctx := ctxT(t)
	obs := &recordingObserver{}
	c := s.NewCommitter(metadata.CommitConfig{MaxRequestBytes: 64 << 10, Observer: obs})
	// 64 partitions × 200 idempotent batches: over 100 KiB of entries.
	apps := make([]metadata.Append, tp.Partitions)
	for p := range tp.Partitions {
		var b []metadata.BatchMeta
		for i := range int32(200) {
			b = append(b, idem(i, int64(1000+i), 0, 0, 1))
		}
		apps[p] = metadata.Append{Topic: tp, Partition: p, Object: "big", Offset: int64(p) * 1000, Length: 1000, Batches: b}
	}
	res, err := c.Commit(ctx, apps)
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range res {
		for i, b := range r.Batches {
			if b.Err != nil || b.BaseOffset != int64(i) {
				t.Fatalf("partition %d batch %d: %+v", p, i, b)
			}
		}
	}
	if n := obs.count(metadata.TxnCommitted); n < 2 {
		t.Fatalf("%d transactions: the commit was not split", n)
	}
	// Retries of those batches are recognised from any committer.
	other := s.NewCommitter(metadata.CommitConfig{})
	res, err = other.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 9, Object: "retry", Length: 10, Batches: []metadata.BatchMeta{idem(0, 1150, 0, 0, 1)}}})
	if err != nil || !res[0].Batches[0].Duplicate || res[0].Batches[0].BaseOffset != 150 {
		t.Fatalf("retry: %v %+v", err, res)
	}

	// One partition with more batches than a request can index.
	var huge []metadata.BatchMeta
	for i := range int32(20000) {
		huge = append(huge, idem(i, int64(5000+i), 0, 0, 1))
	}
	res, err = c.Commit(ctx, []metadata.Append{
		{Topic: tp, Partition: 0, Object: "huge", Length: 10, Batches: huge},
		{Topic: tp, Partition: 1, Object: "huge", Offset: 10, Length: 10, Batches: plain(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Batches[0].Err, metadata.ErrCommitTooLarge) || res[1].Batches[0].Err != nil || res[1].Batches[0].BaseOffset != 200 {
		t.Fatalf("oversized partition: %v / %+v", res[0].Batches[0].Err, res[1].Batches[0])
	}
}

// The per-partition producer cap evicts the least recently written
// producer; live producers keep their de-duplication, and an evicted
// producer is then treated as Kafka treats one it has no state for.
func TestProducerEvictionKeepsLiveProducers(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "cap", 1)
	ctx := ctxT(t)
	c := s.NewCommitter(metadata.CommitConfig{MaxProducersPerPartition: 3, SnapshotEvery: 2})
	commit := func(c *metadata.Committer, b metadata.BatchMeta) metadata.BatchOutcome {
		t.Helper()
		res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: []metadata.BatchMeta{b}}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Batches[0]
	}
	for pid := int64(1); pid <= 3; pid++ {
		commit(c, idem(0, pid, 0, 0, 1)) // offsets 0, 1, 2
	}
	commit(c, idem(0, 1, 0, 1, 1)) // 1 is now the most recent: 2 is the oldest
	commit(c, idem(0, 4, 0, 0, 1)) // a fourth producer evicts 2
	for _, cc := range []*metadata.Committer{c, s.NewCommitter(metadata.CommitConfig{MaxProducersPerPartition: 3})} {
		// Live producers' retries are still duplicates, on this committer
		// and on one that loads the state from etcd.
		if out := commit(cc, idem(0, 1, 0, 1, 1)); !out.Duplicate || out.BaseOffset != 3 {
			t.Fatalf("retry of a live producer: %+v", out)
		}
		if out := commit(cc, idem(0, 3, 0, 0, 1)); !out.Duplicate || out.BaseOffset != 2 {
			t.Fatalf("retry of a live producer: %+v", out)
		}
		// A live producer out of order is still refused.
		if out := commit(cc, idem(0, 4, 0, 7, 1)); !errors.Is(out.Err, metadata.ErrOutOfOrderSequence) {
			t.Fatalf("gap of a live producer: %+v", out)
		}
	}
	// The evicted producer is unknown: its next batch is accepted whatever
	// its sequence, as Kafka accepts a producer whose state expired.
	if out := commit(c, idem(0, 2, 0, 9, 1)); out.Err != nil || out.Duplicate {
		t.Fatalf("evicted producer: %+v", out)
	}
}

// A producer's last five batches (Kafka's window) are kept whether they
// came one per commit or several per append: their retries are
// duplicates, with their offsets, on the committer that wrote them and on
// one that rebuilds the state from the log; the sixth newest is out of
// the window.
func TestProducerKeepsItsLastFiveBatches(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "window", 1)
	c := s.NewCommitter(metadata.CommitConfig{})
	commit := func(c *metadata.Committer, b ...metadata.BatchMeta) []metadata.BatchOutcome {
		t.Helper()
		return commitBatches(t, c, tp, b...)
	}
	commit(c, idem(0, 7, 0, 0, 1))                                           // sequence 0 at offset 0
	commit(c, idem(0, 7, 0, 1, 1), idem(1, 7, 0, 2, 1), idem(2, 7, 0, 3, 1)) // 1-3 at 1-3
	commit(c, idem(0, 7, 0, 4, 1), idem(1, 7, 0, 5, 1), idem(2, 7, 0, 6, 1)) // 4-6 at 4-6
	for _, cc := range []*metadata.Committer{c, s.NewCommitter(metadata.CommitConfig{})} {
		for seq := int32(2); seq <= 6; seq++ {
			if out := commit(cc, idem(0, 7, 0, seq, 1)); !out[0].Duplicate || out[0].BaseOffset != int64(seq) {
				t.Fatalf("retry of sequence %d: %+v, want a duplicate at offset %d", seq, out[0], seq)
			}
		}
		if out := commit(cc, idem(0, 7, 0, 1, 1)); out[0].Duplicate || out[0].Err == nil {
			t.Fatalf("retry of sequence 1, out of the window: %+v", out[0])
		}
	}
}

// Producer state survives committers: one that loads a shard from etcd
// (snapshots plus the entries after them) decides exactly as the one that
// wrote it.
func TestProducerStateIsRebuiltFromSnapshotsAndLog(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "rebuild", 2)
	ctx := ctxT(t)
	c := s.NewCommitter(metadata.CommitConfig{SnapshotEvery: 3})
	for i := range int32(10) {
		_, err := c.Commit(ctx, []metadata.Append{
			{Topic: tp, Partition: 0, Object: fmt.Sprint(i), Length: 1, Batches: []metadata.BatchMeta{idem(0, 7, 2, 2*i, 2)}},
			{Topic: tp, Partition: 1, Object: fmt.Sprint(i), Offset: 1, Length: 1, Batches: []metadata.BatchMeta{idem(0, int64(100+i), 0, 0, 1)}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fresh := s.NewCommitter(metadata.CommitConfig{})
	res, err := fresh.Commit(ctx, []metadata.Append{
		{Topic: tp, Partition: 0, Object: "r", Length: 1, Batches: []metadata.BatchMeta{idem(0, 7, 2, 16, 2), idem(1, 7, 2, 18, 2), idem(2, 7, 2, 20, 1)}},
		{Topic: tp, Partition: 1, Object: "r", Offset: 1, Length: 1, Batches: []metadata.BatchMeta{idem(0, 104, 0, 0, 1), idem(1, 104, 0, 1, 1), idem(2, 104, 1, 0, 1)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := res[0].Batches, res[1].Batches
	if !p0[0].Duplicate || p0[0].BaseOffset != 16 || !p0[1].Duplicate || p0[1].BaseOffset != 18 || p0[2].Err != nil || p0[2].BaseOffset != 20 {
		t.Fatalf("partition 0: %+v", p0)
	}
	if !p1[0].Duplicate || p1[0].BaseOffset != 4 || p1[1].Err != nil || p1[1].BaseOffset != 10 || p1[2].Err != nil || p1[2].BaseOffset != 11 {
		t.Fatalf("partition 1: %+v", p1)
	}
}
