package metadata_test

import (
	"context"
	"testing"

	"github.com/floe-io/floe/metadata"
)

// A commit that fails (etcd unreachable, the context ended) reports no
// offsets for the appends it did not commit. The fault suite
// (tests/fault) found agents acknowledging records at offsets computed
// for a transaction that never reached etcd: other records were then
// committed at those offsets, and the acknowledged ones were lost.
func TestFailedCommitReportsNoOffsets(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "t", 3)
	// Two partitions per transaction, so the appends span two chunks.
	c := s.NewCommitter(metadata.CommitConfig{MaxTxnOps: 4})
	appends := []metadata.Append{
		{Topic: tp, Partition: 0, Object: "o1", Offset: 0, Length: 10, Batches: plain(3)},
		{Topic: tp, Partition: 1, Object: "o1", Offset: 10, Length: 10, Batches: plain(2, 2)},
		{Topic: tp, Partition: 2, Object: "o1", Offset: 20, Length: 10, Batches: append(plain(1),
			metadata.BatchMeta{Ordinal: 1, Records: 1, ProducerID: 7, ProducerEpoch: 0, BaseSequence: 0})},
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := c.Commit(dead, appends)
	if err == nil {
		t.Fatal("a commit with a cancelled context succeeded")
	}
	for i, r := range res {
		for j, b := range r.Batches {
			if b.Err == nil {
				t.Errorf("append %d batch %d of a failed commit reports offset %d and no error", i, j, b.BaseOffset)
			}
		}
		if r.Entry != nil {
			t.Errorf("append %d of a failed commit reports index entry %+v", i, r.Entry)
		}
	}

	// Nothing was written: the offsets are still free, and the committer
	// did not remember a state etcd never had.
	res, err = c.Commit(ctxT(t), appends)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Batches[0].Err != nil || r.Batches[0].BaseOffset != 0 {
			t.Fatalf("append %d after the failed commit: %+v", i, r.Batches[0])
		}
	}
}
