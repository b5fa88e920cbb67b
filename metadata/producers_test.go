package metadata_test

import (
	"errors"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
)

// PartitionProducers reports what a partition remembers of its producers
// (epoch, last sequence, last write, open transaction), only that
// partition's of its shard, the same from the log alone and from
// snapshots, and leaves out producers idle past the expiry unless they
// have a transaction open.
func TestPartitionProducers(t *testing.T) {
	for _, every := range []int{0, 1} {
		testPartitionProducers(t, metadata.CommitConfig{SnapshotEvery: every})
	}
}

func testPartitionProducers(t *testing.T, cfg metadata.CommitConfig) {
	s := newStore(t)
	ctx := ctxT(t)
	tp, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "pp", Partitions: 3, ReplicationFactor: 1, ShardSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	c := s.NewCommitter(cfg)
	commit := func(p int32, b ...metadata.BatchMeta) metadata.CommitResult {
		t.Helper()
		res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: p, Object: "o", Length: 1, Batches: b}})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res[0].Batches {
			if o.Err != nil {
				t.Fatalf("commit to partition %d: %v", p, o.Err)
			}
		}
		return res[0]
	}
	producers := func(p int32, cfg metadata.CommitConfig) []metadata.ProducerInfo {
		t.Helper()
		got, err := s.PartitionProducers(ctx, tp, p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	before := time.Now().UnixMilli()
	commit(0, plain(2)...)                              // 0-1
	commit(0, idem(0, 5, 0, 0, 3), idem(1, 5, 0, 3, 2)) // producer 5: 2-4, 5-6
	r := commit(0, txnData(0, 7, 2, 0, 4))              // producer 7's transaction from 7
	commit(1, idem(0, 9, 1, 0, 1))                      // partition 1, the same shard
	if first := r.Batches[0].BaseOffset; first != 7 {
		t.Fatalf("the transaction's first batch at %d, want 7", first)
	}

	got := producers(0, metadata.CommitConfig{})
	if len(got) != 2 || got[0].ProducerID != 5 || got[1].ProducerID != 7 {
		t.Fatalf("partition 0's producers: %+v, want 5 and 7", got)
	}
	if p := got[0]; p.Epoch != 0 || p.LastSequence() != 4 || p.TxnStart() != -1 || p.LastWrite < before {
		t.Errorf("producer 5: %+v (last sequence %d, transaction from %d)", p, p.LastSequence(), p.TxnStart())
	}
	if p := got[1]; p.Epoch != 2 || p.LastSequence() != 3 || p.TxnStart() != 7 || !p.InTxn {
		t.Errorf("producer 7: %+v (last sequence %d, transaction from %d)", p, p.LastSequence(), p.TxnStart())
	}
	if got := producers(1, metadata.CommitConfig{}); len(got) != 1 || got[0].ProducerID != 9 || got[0].Epoch != 1 || got[0].LastSequence() != 0 {
		t.Errorf("partition 1's producers: %+v, want producer 9 alone", got)
	}
	if got := producers(2, metadata.CommitConfig{}); len(got) != 0 {
		t.Errorf("partition 2 (another shard, never written): %+v", got)
	}

	// Idle past the expiry: producer 5 is forgotten, producer 7's open
	// transaction keeps it.
	later := metadata.CommitConfig{ProducerExpiry: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	if got := producers(0, later); len(got) != 1 || got[0].ProducerID != 7 {
		t.Errorf("two hours later, with a one-hour expiry: %+v, want producer 7 alone", got)
	}

	// The commit marker ends the transaction; the sequences stay.
	commit(0, marker(0, 7, 2, metadata.MarkerCommit))
	got = producers(0, metadata.CommitConfig{})
	if len(got) != 2 || got[1].ProducerID != 7 || got[1].TxnStart() != -1 || got[1].InTxn || got[1].LastSequence() != 3 {
		t.Errorf("after the commit marker: %+v", got)
	}
	if got := producers(0, later); len(got) != 0 {
		t.Errorf("two hours after the commit: %+v, want none", got)
	}

	if _, err := s.PartitionProducers(ctx, tp, 3, metadata.CommitConfig{}); !errors.Is(err, metadata.ErrUnknownPartition) {
		t.Errorf("partition 3 of 3: %v, want ErrUnknownPartition", err)
	}
	if _, err := s.PartitionProducers(ctx, tp, -1, metadata.CommitConfig{}); !errors.Is(err, metadata.ErrUnknownPartition) {
		t.Errorf("partition -1: %v, want ErrUnknownPartition", err)
	}
}
