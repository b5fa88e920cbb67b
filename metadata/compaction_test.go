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

func readLog(t *testing.T, s *metadata.Store, tp metadata.Topic, shard int32) metadata.ShardLog {
	t.Helper()
	l, err := s.ReadShardLog(ctxT(t), metadata.ShardID{Topic: tp.ID, Shard: shard})
	if err != nil {
		t.Fatal(err)
	}
	return l
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

// Retention's edit: the log start raised, entries below it removed, in
// one fenced transaction that compares what was read.
func TestEditShardRetention(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "trim", 1)
	commitN(t, s, tp, 0, 5, 10) // entries 1-5 hold 0-9, 10-19, ..., 40-49
	l := lead(t, s, "c1")
	ctx := ctxT(t)
	lg := readLog(t, s, tp, 0)
	if len(lg.Entries) != 5 || lg.Entries[0].ModRevision == 0 || lg.State.Seq != 5 || lg.State.Nexts[0] != 50 {
		t.Fatalf("log %+v", lg)
	}
	edit := metadata.ShardEdit{
		Shard: lg.Shard, State: lg.State, Starts: map[int32]int64{0: 20},
		Delete: lg.Entries[:2], Unreferenced: []string{"o0-0", "o0-1"},
	}
	if _, err := s.EditShard(ctx, metadata.Fence{}, edit); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("unfenced edit: %v", err)
	}
	if _, err := s.EditShard(ctx, l.Fence(), edit); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetPartitionState(ctx, tp, 0)
	if got.Start != 20 || got.Next != 50 {
		t.Fatalf("state after trim %+v", got)
	}
	left, _ := s.PartitionEntries(ctx, tp, 0, 20, 0)
	if len(left) != 3 || left[0].First != 20 {
		t.Fatalf("index after trim %+v", left)
	}
	if m := marked(t, s); fmt.Sprint(m) != "[o0-0 o0-1]" {
		t.Fatalf("marks %v", m)
	}
	// The same edit again conflicts: the entries are gone and the starts
	// changed.
	if _, err := s.EditShard(ctx, l.Fence(), edit); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("stale edit: %v", err)
	}
	// Agents' commits do not conflict with retention: they only add
	// entries after the latest.
	commitN(t, s, tp, 0, 1, 1)
	lg2 := readLog(t, s, tp, 0)
	edit2 := metadata.ShardEdit{Shard: lg2.Shard, State: lg2.State, Starts: map[int32]int64{0: 30}, Delete: lg2.Entries[:1]}
	commitN(t, s, tp, 0, 1, 1)
	if _, err := s.EditShard(ctx, l.Fence(), edit2); err != nil {
		t.Fatalf("retention racing a commit: %v", err)
	}
	if st, _ := s.GetPartitionState(ctx, tp, 0); st.Start != 30 || st.Next != 52 {
		t.Fatalf("state %+v", st)
	}
}

// A merge's edit: consecutive entries replaced by one entry at the first
// one's key that covers them all.
func TestEditShardMerge(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "swap", 1)
	commitN(t, s, tp, 0, 4, 3) // 0-2, 3-5, 6-8, 9-11
	l := lead(t, s, "c1")
	ctx := ctxT(t)
	lg := readLog(t, s, tp, 0)
	run := lg.Entries[1:3] // seq 2-3: offsets 3-8
	merged := metadata.StoredLogEntry{ModRevision: run[0].ModRevision, LogEntry: metadata.LogEntry{
		Seq: 2, SeqLast: 3, Committed: run[1].Committed, Base: 0, Nexts: run[1].Nexts, Flags: metadata.EntryMerged,
		Objects: []metadata.ObjectRef{{Key: "m1", Size: 400}},
		Extents: []metadata.Extent{{Partition: 0, Object: 0, Offset: 16, Length: 300, First: 3, Last: 8, Batches: 2}},
	}}
	edit := metadata.ShardEdit{Shard: lg.Shard, Put: []metadata.StoredLogEntry{merged}, Delete: run[1:], Unreferenced: []string{"o0-1", "o0-2"}}
	if _, err := s.EditShard(ctx, l.Fence(), edit); err != nil {
		t.Fatal(err)
	}
	got, _ := s.PartitionEntries(ctx, tp, 0, 0, 0)
	if len(got) != 3 || got[0].Object != "o0-0" || got[1].Object != "m1" || got[1].First != 3 || got[1].Last != 8 || got[2].First != 9 {
		t.Fatalf("index after merge %+v", got)
	}
	for off, want := range map[int64]string{0: "o0-0", 4: "m1", 8: "m1", 10: "o0-3"} {
		if e, err := s.PartitionEntries(ctx, tp, 0, off, 1); err != nil || len(e) != 1 || e[0].Object != want {
			t.Fatalf("entry holding %d: %+v %v", off, e, err)
		}
	}
	if m := marked(t, s); fmt.Sprint(m) != "[o0-1 o0-2]" {
		t.Fatalf("marks %v", m)
	}
	// The old entries changed: the same merge again conflicts and changes
	// nothing.
	if _, err := s.EditShard(ctx, l.Fence(), edit); !errors.Is(err, metadata.ErrConflict) {
		t.Fatalf("second merge: %v", err)
	}
	got2, _ := s.PartitionEntries(ctx, tp, 0, 0, 0)
	if fmt.Sprint(got2) != fmt.Sprint(got) {
		t.Fatalf("a failed merge changed the index: %+v", got2)
	}
}

func TestCompactorElectionFencesDeposedLeader(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "fence", 1)
	commitN(t, s, tp, 0, 3, 1)
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
	trim := func(f metadata.Fence, start int64) error {
		lg := readLog(t, s, tp, 0)
		_, err := s.EditShard(ctx, f, metadata.ShardEdit{Shard: lg.Shard, State: lg.State, Starts: map[int32]int64{0: start}})
		return err
	}
	if err := trim(a.Fence(), 1); err != nil {
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
	if err := trim(a.Fence(), 2); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed leader's trim: %v", err)
	}
	if err := s.DeleteObjectMarks(ctx, a.Fence(), []metadata.ObjectMark{{Object: "x", ModRevision: 0}}); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed leader's mark delete: %v", err)
	}
	if err := trim(b.Fence(), 2); err != nil {
		t.Fatalf("new leader's trim: %v", err)
	}
	if who, _, _ := s.CompactorLeader(ctx); who != "b" {
		t.Fatalf("leader %q", who)
	}
}

func TestAdvanceLogStart(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "dr", 2)
	commitN(t, s, tp, 0, 2, 5) // 0-4, 5-9
	ctx := ctxT(t)
	st, err := s.AdvanceLogStart(ctx, tp, 0, 3)
	if err != nil || st.Start != 3 || st.Next != 10 {
		t.Fatalf("advance to 3: %+v %v", st, err)
	}
	if st, err = s.AdvanceLogStart(ctx, tp, 0, 1); err != nil || st.Start != 3 {
		t.Fatalf("advance backwards: %+v %v", st, err)
	}
	if _, err = s.AdvanceLogStart(ctx, tp, 0, 11); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("beyond the high watermark: %v", err)
	}
	if _, err = s.AdvanceLogStart(ctx, tp, 0, -7); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("negative: %v", err)
	}
	if st, err = s.AdvanceLogStart(ctx, tp, 0, -1); err != nil || st.Start != 10 {
		t.Fatalf("to the high watermark: %+v %v", st, err)
	}
	// A partition never written to: 0 and -1 are fine, anything else is out
	// of range.
	if _, err = s.AdvanceLogStart(ctx, tp, 1, -1); err != nil {
		t.Fatal(err)
	}
	if _, err = s.AdvanceLogStart(ctx, tp, 1, 1); !errors.Is(err, metadata.ErrOffsetOutOfRange) {
		t.Fatalf("empty partition: %v", err)
	}
	// The log is untouched: entries below the start are the compactor's.
	if lg := readLog(t, s, tp, 0); len(lg.Entries) != 2 {
		t.Fatalf("log %+v", lg)
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
	if err := s.ForEachLogEntry(ctx, func(sh metadata.ShardID, e metadata.LogEntry) error {
		if sh.Topic != tp.ID {
			t.Fatalf("entry of %v", sh)
		}
		for _, o := range e.Objects {
			refs[o.Key] = true
		}
		return nil
	}); err != nil || len(refs) != 9 {
		t.Fatalf("%d objects referenced, %v", len(refs), err)
	}

	l := lead(t, s, "c")
	lg := readLog(t, s, tp, 1)
	if _, err := s.EditShard(ctx, l.Fence(), metadata.ShardEdit{Shard: lg.Shard, State: lg.State, Starts: map[int32]int64{0: 2},
		Delete: lg.Entries[:2], Unreferenced: []string{"o1-0", "o1-1", "o1-2"}}); err != nil {
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
