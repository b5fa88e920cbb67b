package metadata_test

import (
	"errors"
	"testing"

	"github.com/floe-io/floe/metadata"
)

func txnData(ord int32, pid int64, epoch int16, seq, records int32) metadata.BatchMeta {
	b := idem(ord, pid, epoch, seq, records)
	b.Transactional = true
	return b
}

func marker(ord int32, pid int64, epoch int16, m metadata.Marker) metadata.BatchMeta {
	return metadata.BatchMeta{Ordinal: ord, Records: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1, Transactional: true, Marker: m}
}

// Transactions hold a partition's last stable offset at their first
// offset until their marker; abort markers add to the aborted index, which
// a read_committed fetch reads; a fresh committer (another agent) reaches
// the same state from etcd, and a stale epoch's marker is fenced.
func TestTransactionsInTheLog(t *testing.T) {
	// From the log's entries, and from producer snapshots written after
	// every entry.
	for _, every := range []int{0, 1} {
		testTransactionsInTheLog(t, metadata.CommitConfig{SnapshotEvery: every})
	}
}

func testTransactionsInTheLog(t *testing.T, cfg metadata.CommitConfig) {
	s := newStore(t)
	tp := mkTopic(t, s, "txn", 1)
	ctx := ctxT(t)
	a := s.NewCommitter(cfg)
	commit := func(c *metadata.Committer, b ...metadata.BatchMeta) metadata.CommitResult {
		t.Helper()
		res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: b}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	stable := func() (next, lso int64) {
		t.Helper()
		st, err := s.GetPartitionState(ctx, tp, 0)
		if err != nil {
			t.Fatal(err)
		}
		return st.Next, st.Stable
	}

	commit(a, plain(2)...)            // offsets 0-1, outside any transaction
	commit(a, txnData(0, 7, 0, 0, 3)) // producer 7: 2-4
	commit(a, txnData(0, 8, 0, 0, 2)) // producer 8: 5-6
	if next, lso := stable(); next != 7 || lso != 2 {
		t.Fatalf("two open transactions: next %d, stable %d; want 7, 2", next, lso)
	}
	r := commit(a, marker(0, 7, 0, metadata.MarkerAbort), txnData(1, 7, 0, 3, 1)) // abort at 7; producer 7's next transaction from 8
	if r.Batches[0].Err != nil || r.Batches[0].BaseOffset != 7 {
		t.Fatalf("abort marker: %+v", r.Batches[0])
	}
	if next, lso := stable(); next != 9 || lso != 5 {
		t.Fatalf("after producer 7's abort: next %d, stable %d; want 9, 5 (producer 8's)", next, lso)
	}

	// Another agent learns the same state from etcd and commits on it.
	b := s.NewCommitter(cfg)
	commit(b, marker(0, 8, 0, metadata.MarkerCommit)) // 9
	if next, lso := stable(); next != 10 || lso != 8 {
		t.Fatalf("after producer 8's commit: next %d, stable %d; want 10, 8 (producer 7's second transaction)", next, lso)
	}
	commit(b, marker(0, 7, 1, metadata.MarkerAbort)) // 10, with a bumped epoch
	if next, lso := stable(); next != 11 || lso != 11 {
		t.Fatalf("all transactions ended: next %d, stable %d; want 11, 11", next, lso)
	}
	if r := commit(a, txnData(0, 7, 0, 4, 1)); !errors.Is(r.Batches[0].Err, metadata.ErrInvalidProducerEpoch) {
		t.Fatalf("a batch of the epoch before the abort's: %+v, want fenced", r.Batches[0])
	}
	if r := commit(a, marker(0, 7, 0, metadata.MarkerCommit)); !errors.Is(r.Batches[0].Err, metadata.ErrInvalidProducerEpoch) {
		t.Fatalf("a marker of an older epoch: %+v, want fenced", r.Batches[0])
	}

	if r.Entry == nil {
		t.Fatal("no entry for the abort")
	}
	got, err := s.AbortedTxns(ctx, tp.ID, 0, 0, 11)
	if err != nil {
		t.Fatal(err)
	}
	want := []metadata.AbortedTxn{{ProducerID: 7, First: 2, Last: 7, Stable: 5}, {ProducerID: 7, First: 8, Last: 10, Stable: 11}}
	if len(got) != len(want) {
		t.Fatalf("aborted transactions: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("aborted transaction %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// From offset 8 up to 9: the first ended before 8; the second overlaps.
	if got, _ := s.AbortedTxns(ctx, tp.ID, 0, 8, 9); len(got) != 1 || got[0].First != 8 {
		t.Fatalf("aborted transactions over [8, 9): %+v", got)
	}
	// Up to 5: the scan stops at the first whose stable offset reaches 5.
	if got, _ := s.AbortedTxns(ctx, tp.ID, 0, 0, 5); len(got) != 1 || got[0].First != 2 {
		t.Fatalf("aborted transactions over [0, 5): %+v", got)
	}
	if err := s.TrimAbortedTxns(ctx, tp.ID, 0, 8); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AbortedTxns(ctx, tp.ID, 0, 0, 11); len(got) != 1 || got[0].Last != 10 {
		t.Fatalf("after trimming below 8: %+v", got)
	}
}

// Two abort markers in one append: each index entry holds the last
// stable offset right after its own marker, while the other transaction
// is still open, not the one after the whole append. Otherwise a
// read_committed fetch that ends between the markers stops its index scan
// at the first entry and misses the second transaction, whose records it
// then returns as committed.
func TestAbortMarkersInOneAppend(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "txn", 1)
	ctx := ctxT(t)
	a := s.NewCommitter(metadata.CommitConfig{})
	commit := func(b ...metadata.BatchMeta) {
		t.Helper()
		res, err := a.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: b}})
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range res[0].Batches {
			if o.Err != nil {
				t.Fatalf("batch %d: %v", i, o.Err)
			}
		}
	}
	commit(txnData(0, 7, 0, 0, 3))                                                       // producer 7: 0-2
	commit(txnData(0, 8, 0, 0, 2))                                                       // producer 8: 3-4
	commit(marker(0, 7, 1, metadata.MarkerAbort), marker(1, 8, 1, metadata.MarkerAbort)) // 5, 6

	want := []metadata.AbortedTxn{{ProducerID: 7, First: 0, Last: 5, Stable: 3}, {ProducerID: 8, First: 3, Last: 6, Stable: 7}}
	got, err := s.AbortedTxns(ctx, tp.ID, 0, 0, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("aborted transactions: %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("aborted transaction %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A fetch of [0, 6) returns producer 8's records 3-4: it must learn
	// they were aborted.
	if got, _ := s.AbortedTxns(ctx, tp.ID, 0, 0, 6); len(got) != 2 {
		t.Fatalf("aborted transactions over [0, 6): %+v, want both", got)
	}
}

// A transactional batch admitted for a transaction whose marker already
// ended it on the partition (a produce delayed past its transaction's
// end, under transaction version 1 where the epoch stays) is refused, not
// left to open a transaction nobody will end; the next transaction's
// batches, and retries of batches committed before the marker, are not.
func TestLateBatchOfAnEndedTransactionIsRefused(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "late", 1)
	ctx := ctxT(t)
	c := s.NewCommitter(metadata.CommitConfig{})
	commit := func(b metadata.BatchMeta) metadata.BatchOutcome {
		t.Helper()
		res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: []metadata.BatchMeta{b}}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Batches[0]
	}
	in := func(b metadata.BatchMeta, started int64) metadata.BatchMeta {
		b.TxnStarted = started
		return b
	}
	first := commit(in(txnData(0, 9, 0, 0, 2), 100)) // offsets 0-1, transaction started at 100
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if out := commit(in(marker(0, 9, 0, metadata.MarkerAbort), 100)); out.Err != nil {
		t.Fatal(out.Err)
	}
	if out := commit(in(txnData(0, 9, 0, 2, 1), 100)); !errors.Is(out.Err, metadata.ErrTxnEnded) {
		t.Fatalf("a batch of the ended transaction after its marker: %+v, want ErrTxnEnded", out)
	}
	if out := commit(in(txnData(0, 9, 0, 0, 2), 100)); !out.Duplicate || out.BaseOffset != first.BaseOffset {
		t.Fatalf("a retry of a batch committed before the marker: %+v, want the duplicate at %d", out, first.BaseOffset)
	}
	if out := commit(in(txnData(0, 9, 0, 2, 1), 200)); out.Err != nil {
		t.Fatalf("the next transaction's batch: %+v", out)
	}
	st, err := s.GetPartitionState(ctx, tp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Stable != 3 || st.Next != 4 {
		t.Fatalf("next %d, stable %d; want 4 and 3 (only the second transaction open)", st.Next, st.Stable)
	}
}
