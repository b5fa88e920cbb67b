package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
)

// commitN commits n single-batch appends of records each to one partition,
// each in its own object, and returns the partition ID.
func commitN(t *testing.T, s *metadata.Store, tp metadata.Topic, partition int32, n int, records int32) metadata.PartitionID {
	t.Helper()
	c := s.NewCommitter(metadata.CommitConfig{})
	for i := range n {
		_, err := c.Commit(ctxT(t), []metadata.Append{{
			Topic: tp, Partition: partition, Object: fmt.Sprintf("o%d-%d", partition, i), Offset: 16, Length: 100,
			Batches: []metadata.BatchMeta{{Records: records, ProducerID: -1, MinTimestamp: int64(i), MaxTimestamp: int64(i)}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return metadata.PartitionID{Topic: tp.ID, Partition: partition}
}

func lead(t *testing.T, s *metadata.Store, id string) *metadata.CompactorLeadership {
	t.Helper()
	l, err := s.CampaignCompactor(ctxT(t), id, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Resign(context.Background()) })
	return l
}

func marked(t *testing.T, s *metadata.Store) []string {
	t.Helper()
	marks, err := s.ObjectMarks(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range marks {
		if time.Since(m.Since) > time.Minute || time.Until(m.Since) > time.Minute {
			t.Fatalf("mark of %s stamped %v", m.Object, m.Since)
		}
		out = append(out, m.Object)
	}
	slices.Sort(out)
	return out
}

func TestTrimLog(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "trim", 1)
	id := commitN(t, s, tp, 0, 5, 10) // entries 0-9, 10-19, ..., 40-49
	l := lead(t, s, "c1")
	ctx := ctxT(t)

	st, _ := s.GetPartitionState(ctx, id)
	idx, _ := s.PartitionIndex(ctx, id)
	if len(idx) != 5 || idx[0].ModRevision == 0 {
		t.Fatalf("index %+v", idx)
	}
	// An entry at or above the new start is never removed.
	if _, err := s.TrimLog(ctx, l.Fence(), id, st, 15, []metadata.IndexEntry{idx[0].IndexEntry, idx[1].IndexEntry}); err == nil {
		t.Fatal("trim removed the entry holding the new start")
	}
	if _, err := s.TrimLog(ctx, l.Fence(), id, st, 51, nil); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("trim beyond the high watermark: %v", err)
	}
	if _, err := s.TrimLog(ctx, metadata.Fence{}, id, st, 20, nil); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("unfenced trim: %v", err)
	}
	nst, err := s.TrimLog(ctx, l.Fence(), id, st, 20, []metadata.IndexEntry{idx[0].IndexEntry, idx[1].IndexEntry})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetPartitionState(ctx, id)
	if got.Start != 20 || got.Next != 50 || got.ModRevision != nst.ModRevision {
		t.Fatalf("state after trim %+v (returned %+v)", got, nst)
	}
	left, _ := s.IndexEntries(ctx, id, 0, 0)
	if len(left) != 3 || left[0].First != 20 {
		t.Fatalf("index after trim %+v", left)
	}
	if m := marked(t, s); fmt.Sprint(m) != "[o0-0 o0-1]" {
		t.Fatalf("marks %v", m)
	}
	// Trimming with the stale state conflicts; so does a commit in between.
	if _, err := s.TrimLog(ctx, l.Fence(), id, st, 30, []metadata.IndexEntry{idx[2].IndexEntry}); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("stale trim: %v", err)
	}
	commitN(t, s, tp, 0, 1, 1)
	if _, err := s.TrimLog(ctx, l.Fence(), id, nst, 30, []metadata.IndexEntry{idx[2].IndexEntry}); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("trim racing a commit: %v", err)
	}
}

func TestSwapIndexEntries(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "swap", 1)
	id := commitN(t, s, tp, 0, 4, 3) // 0-2, 3-5, 6-8, 9-11
	l := lead(t, s, "c1")
	ctx := ctxT(t)
	idx, _ := s.PartitionIndex(ctx, id)
	merged := metadata.IndexEntry{Object: "m1", Offset: 16, Length: 300, First: 3, Last: 11, Batches: 3, MinTimestamp: 1, MaxTimestamp: 3, Committed: time.Now().UnixMilli()}

	bad := merged
	bad.Last = 10
	if err := s.SwapIndexEntries(ctx, l.Fence(), id, idx[1:], bad); err == nil {
		t.Fatal("swap accepted a merged entry that does not cover the old ones")
	}
	bad = merged
	bad.Batches = 2
	if err := s.SwapIndexEntries(ctx, l.Fence(), id, idx[1:], bad); err == nil {
		t.Fatal("swap accepted a merged entry with missing batches")
	}
	if err := s.SwapIndexEntries(ctx, l.Fence(), id, []metadata.StoredIndexEntry{idx[1], idx[3]}, merged); err == nil {
		t.Fatal("swap accepted entries with a gap")
	}
	if err := s.SwapIndexEntries(ctx, l.Fence(), id, idx[1:], merged); err != nil {
		t.Fatal(err)
	}
	got, _ := s.IndexEntries(ctx, id, 0, 0)
	if len(got) != 2 || got[0].Object != "o0-0" || got[1].Object != "m1" || got[1].First != 3 || got[1].Last != 11 {
		t.Fatalf("index after swap %+v", got)
	}
	if m := marked(t, s); fmt.Sprint(m) != "[o0-1 o0-2 o0-3]" {
		t.Fatalf("marks %v", m)
	}
	// The old entries are gone: swapping them again conflicts.
	merged.Object = "m2"
	if err := s.SwapIndexEntries(ctx, l.Fence(), id, idx[1:], merged); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("second swap: %v", err)
	}
	got2, _ := s.IndexEntries(ctx, id, 0, 0)
	if fmt.Sprint(got2) != fmt.Sprint(got) {
		t.Fatalf("a failed swap changed the index: %+v", got2)
	}
}

func TestCompactorElectionFencesDeposedLeader(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "fence", 1)
	id := commitN(t, s, tp, 0, 3, 1)
	ctx := ctxT(t)

	a, err := s.CampaignCompactor(ctx, "a", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	elected := make(chan *metadata.CompactorLeadership, 1)
	go func() {
		b, err := s.CampaignCompactor(ctx, "b", 5*time.Second)
		if err != nil {
			t.Error(err)
			close(elected)
			return
		}
		elected <- b
	}()
	select {
	case <-elected:
		t.Fatal("b was elected while a leads")
	case <-time.After(300 * time.Millisecond):
	}
	if who, ok, err := s.CompactorLeader(ctx); err != nil || !ok || who != "a" {
		t.Fatalf("leader %q %v %v", who, ok, err)
	}
	st, _ := s.GetPartitionState(ctx, id)
	if st, err = s.TrimLog(ctx, a.Fence(), id, st, 1, nil); err != nil {
		t.Fatal(err)
	}
	// a loses its session (as when its lease lapses); b takes over.
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	b := <-elected
	if b == nil {
		t.FailNow()
	}
	defer b.Resign(context.Background())
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a's Done did not close")
	}
	if _, err := s.TrimLog(ctx, a.Fence(), id, st, 2, nil); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed leader's trim: %v", err)
	}
	if err := s.DeleteObjectMarks(ctx, a.Fence(), []metadata.ObjectMark{{Object: "x", ModRevision: 0}}); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed leader's mark delete: %v", err)
	}
	if _, err := s.TrimLog(ctx, b.Fence(), id, st, 2, nil); err != nil {
		t.Fatalf("new leader's trim: %v", err)
	}
	if who, _, _ := s.CompactorLeader(ctx); who != "b" {
		t.Fatalf("leader %q", who)
	}
}

func TestAdvanceLogStart(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "dr", 2)
	id := commitN(t, s, tp, 0, 2, 5) // 0-4, 5-9
	ctx := ctxT(t)
	st, err := s.AdvanceLogStart(ctx, id, 3)
	if err != nil || st.Start != 3 || st.Next != 10 {
		t.Fatalf("advance to 3: %+v %v", st, err)
	}
	if st, err = s.AdvanceLogStart(ctx, id, 1); err != nil || st.Start != 3 {
		t.Fatalf("advance backwards: %+v %v", st, err)
	}
	if _, err = s.AdvanceLogStart(ctx, id, 11); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("beyond the high watermark: %v", err)
	}
	if _, err = s.AdvanceLogStart(ctx, id, -7); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("negative: %v", err)
	}
	if st, err = s.AdvanceLogStart(ctx, id, -1); err != nil || st.Start != 10 {
		t.Fatalf("to the high watermark: %+v %v", st, err)
	}
	// A partition never written to: 0 and -1 are fine, anything else is out
	// of range, and no state is created.
	empty := metadata.PartitionID{Topic: tp.ID, Partition: 1}
	if _, err = s.AdvanceLogStart(ctx, empty, -1); err != nil {
		t.Fatal(err)
	}
	if _, err = s.AdvanceLogStart(ctx, empty, 1); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("empty partition: %v", err)
	}
	if st, _ := s.GetPartitionState(ctx, empty); st.ModRevision != 0 {
		t.Fatalf("state created: %+v", st)
	}
	// The index is untouched: entries below the start are the compactor's.
	if idx, _ := s.IndexEntries(ctx, id, 0, 0); len(idx) != 2 {
		t.Fatalf("index %+v", idx)
	}
}

func TestScansAndMarks(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "scan", 3)
	for p := range int32(3) {
		commitN(t, s, tp, p, 3, 1)
	}
	ctx := ctxT(t)
	refs := map[string]bool{}
	if err := s.ForEachIndexEntry(ctx, func(id metadata.PartitionID, e metadata.IndexEntry) error {
		if id.Topic != tp.ID {
			t.Fatalf("entry of %v", id)
		}
		refs[e.Object] = true
		return nil
	}); err != nil || len(refs) != 9 {
		t.Fatalf("%d objects referenced, %v", len(refs), err)
	}
	parts := 0
	if err := s.ForEachPartitionState(ctx, func(id metadata.PartitionID, st metadata.PartitionState) error {
		if st.Next != 3 || st.ModRevision == 0 {
			t.Fatalf("%v: %+v", id, st)
		}
		parts++
		return nil
	}); err != nil || parts != 3 {
		t.Fatalf("%d partitions, %v", parts, err)
	}

	l := lead(t, s, "c")
	id := metadata.PartitionID{Topic: tp.ID, Partition: 1}
	st, _ := s.GetPartitionState(ctx, id)
	idx, _ := s.IndexEntries(ctx, id, 0, 0)
	if _, err := s.TrimLog(ctx, l.Fence(), id, st, 3, idx); err != nil {
		t.Fatal(err)
	}
	marks, err := s.ObjectMarks(ctx)
	if err != nil || len(marks) != 3 {
		t.Fatalf("marks %+v %v", marks, err)
	}
	stale := marks[0]
	stale.ModRevision--
	if err := s.DeleteObjectMarks(ctx, l.Fence(), []metadata.ObjectMark{stale}); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("deleting a changed mark: %v", err)
	}
	if err := s.DeleteObjectMarks(ctx, l.Fence(), marks); err != nil {
		t.Fatal(err)
	}
	if m := marked(t, s); len(m) != 0 {
		t.Fatalf("marks left %v", m)
	}
}
