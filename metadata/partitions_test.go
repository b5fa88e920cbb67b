package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/floe-io/floe/metadata"
)

func mkTopic(t *testing.T, s *metadata.Store, name string, parts int32) metadata.Topic {
	t.Helper()
	tp, err := s.CreateTopic(ctxT(t), metadata.TopicSpec{Name: name, Partitions: parts, ReplicationFactor: 1})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func plain(records ...int32) []metadata.BatchMeta {
	var out []metadata.BatchMeta
	for i, r := range records {
		out = append(out, metadata.BatchMeta{Ordinal: int32(i), Records: r, ProducerID: -1, MinTimestamp: int64(i), MaxTimestamp: int64(i)})
	}
	return out
}

func TestCommitAssignsContiguousOffsets(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "t", 2)
	c := s.NewCommitter(metadata.CommitConfig{})
	ctx := ctxT(t)

	res, err := c.Commit(ctx, []metadata.Append{
		{Topic: tp, Partition: 0, Object: "o1", Offset: 10, Length: 100, Batches: plain(3, 2)},
		{Topic: tp, Partition: 1, Object: "o1", Offset: 110, Length: 50, Batches: plain(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := []int64{res[0].Batches[0].BaseOffset, res[0].Batches[1].BaseOffset, res[1].Batches[0].BaseOffset}; fmt.Sprint(got) != "[0 3 0]" {
		t.Fatalf("offsets %v", got)
	}
	if res[0].Next != 5 || res[0].Entry.First != 0 || res[0].Entry.Last != 4 || res[0].Entry.Batches != 2 {
		t.Fatalf("state %+v entry %+v", res[0].Next, res[0].Entry)
	}
	res, err = c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o2", Offset: 0, Length: 10, Batches: plain(4)}})
	if err != nil || res[0].Batches[0].BaseOffset != 5 {
		t.Fatalf("second commit: %v %+v", err, res)
	}
	st, err := s.GetPartitionState(ctx, tp, 0)
	if err != nil || st.Next != 9 || st.Start != 0 {
		t.Fatalf("state %+v %v", st, err)
	}
	entries, err := s.PartitionEntries(ctx, tp, 0, 0, 0)
	if err != nil || len(entries) != 2 || entries[1].First != 5 || entries[1].Object != "o2" {
		t.Fatalf("index %+v %v", entries, err)
	}
	e, err := s.PartitionEntries(ctx, tp, 0, 7, 1)
	if err != nil || len(e) != 1 || e[0].First != 5 {
		t.Fatalf("entry holding 7: %+v %v", e, err)
	}
	e, err = s.PartitionEntries(ctx, tp, 0, 4, 1)
	if err != nil || len(e) != 1 || e[0].First != 0 {
		t.Fatalf("entry holding 4: %+v %v", e, err)
	}
	if e, err = s.PartitionEntries(ctx, tp, 0, 9, 1); err != nil || len(e) != 0 {
		t.Fatalf("entry holding the high watermark: %+v %v", e, err)
	}
}

// Several committers (as on several agents) writing the same partitions
// concurrently still produce unique, contiguous offsets.
func TestConcurrentCommittersNeverReuseOffsets(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "shared", 3)
	ctx := ctxT(t)
	const writers, rounds = 4, 25
	type got struct {
		part  int32
		first int64
		n     int32
	}
	var (
		mu   sync.Mutex
		seen []got
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.NewCommitter(metadata.CommitConfig{MaxTxnOps: 4}) // forces one partition per transaction
			for r := range rounds {
				var apps []metadata.Append
				for p := range int32(3) {
					apps = append(apps, metadata.Append{Topic: tp, Partition: p, Object: fmt.Sprintf("w%d-%d", w, r), Length: 1, Batches: plain(int32(1 + (w+r)%3))})
				}
				res, err := c.Commit(ctx, apps)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for i, a := range apps {
					seen = append(seen, got{a.Partition, res[i].Batches[0].BaseOffset, a.Batches[0].Records})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for p := range int32(3) {
		var mine []got
		for _, g := range seen {
			if g.part == p {
				mine = append(mine, g)
			}
		}
		sort.Slice(mine, func(i, j int) bool { return mine[i].first < mine[j].first })
		next := int64(0)
		for _, g := range mine {
			if g.first != next {
				t.Fatalf("partition %d: batch at %d, expected %d (gap or overlap)", p, g.first, next)
			}
			next += int64(g.n)
		}
		st, _ := s.GetPartitionState(ctx, tp, p)
		if st.Next != next {
			t.Fatalf("partition %d: high watermark %d, batches end at %d", p, st.Next, next)
		}
		entries, _ := s.PartitionEntries(ctx, tp, p, 0, 0)
		if len(entries) != writers*rounds {
			t.Fatalf("partition %d: %d index entries, want %d", p, len(entries), writers*rounds)
		}
	}
}

func idem(ord int32, pid int64, epoch int16, seq int32, records int32) metadata.BatchMeta {
	return metadata.BatchMeta{Ordinal: ord, Records: records, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}
}

// commitBatches commits batches b to partition 0 of tp with c and returns
// their outcomes.
func commitBatches(t *testing.T, c *metadata.Committer, tp metadata.Topic, b ...metadata.BatchMeta) []metadata.BatchOutcome {
	t.Helper()
	res, err := c.Commit(ctxT(t), []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: b}})
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Batches
}

func TestIdempotentProducerRules(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "idem", 1)
	commit := func(c *metadata.Committer, b ...metadata.BatchMeta) []metadata.BatchOutcome {
		t.Helper()
		return commitBatches(t, c, tp, b...)
	}
	a := s.NewCommitter(metadata.CommitConfig{})
	b := s.NewCommitter(metadata.CommitConfig{}) // another agent

	out := commit(a, idem(0, 7, 0, 0, 5), idem(1, 7, 0, 5, 5))
	if out[0].BaseOffset != 0 || out[1].BaseOffset != 5 {
		t.Fatalf("first: %+v", out)
	}
	// A retry of the second batch on another agent is a duplicate with its
	// original offset, and writes nothing.
	out = commit(b, idem(0, 7, 0, 5, 5))
	if !out[0].Duplicate || out[0].BaseOffset != 5 {
		t.Fatalf("duplicate: %+v", out)
	}
	// A gap is out of order.
	out = commit(b, idem(0, 7, 0, 20, 1))
	if !errors.Is(out[0].Err, metadata.ErrOutOfOrderSequence) {
		t.Fatalf("gap: %+v", out)
	}
	// A duplicate mixed with a new batch: the new one lands, the entry
	// skips the duplicate's ordinal.
	res, err := a.Commit(ctxT(t), []metadata.Append{{Topic: tp, Partition: 0, Object: "o3", Length: 1, Batches: []metadata.BatchMeta{idem(0, 7, 0, 5, 5), idem(1, 7, 0, 10, 2)}}})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Batches[0].Duplicate || res[0].Batches[1].BaseOffset != 10 || fmt.Sprint(res[0].Entry.Skip) != "[0]" || res[0].Entry.First != 10 || res[0].Entry.Last != 11 {
		t.Fatalf("mixed: %+v entry %+v", res[0].Batches, res[0].Entry)
	}
	// A newer epoch must start at 0; then the old epoch is fenced.
	out = commit(b, idem(0, 7, 1, 3, 1))
	if !errors.Is(out[0].Err, metadata.ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %+v", out)
	}
	out = commit(b, idem(0, 7, 1, 0, 1))
	if out[0].Err != nil || out[0].BaseOffset != 12 {
		t.Fatalf("new epoch: %+v", out)
	}
	out = commit(a, idem(0, 7, 0, 12, 1))
	if !errors.Is(out[0].Err, metadata.ErrInvalidProducerEpoch) {
		t.Fatalf("old epoch: %+v", out)
	}
	// Sequences wrap at MaxInt32.
	out = commit(a, idem(0, 9, 0, 2147483646, 2), idem(1, 9, 0, 0, 1))
	if out[0].Err != nil || out[1].Err != nil {
		t.Fatalf("wrap: %+v", out)
	}
}

// A partition remembers each producer's last five batches, however they
// came: several in one append, interleaved with another producer's, or
// from an append carrying more producers than are looked up by a scan.
// A retry of any of them is a duplicate with its first offset, on the
// agent that committed them and on another that reads them from etcd; a
// retry of an older one is out of order.
func TestProducerRemembersItsLastBatches(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "last", 1)
	a := s.NewCommitter(metadata.CommitConfig{})
	type sent struct {
		b    metadata.BatchMeta
		base int64
	}
	var log []sent // every batch committed, in order
	commit := func(bs ...metadata.BatchMeta) {
		t.Helper()
		out := commitBatches(t, a, tp, bs...)
		for i, o := range out {
			if o.Err != nil || o.Duplicate {
				t.Fatalf("batch %d of %+v: %+v", i, bs, o)
			}
			log = append(log, sent{bs[i], o.BaseOffset})
		}
	}
	// Producers 1 and 2 interleaved, two batches each per append.
	seq := map[int64]int32{}
	next := func(ord int32, pid int64) metadata.BatchMeta {
		b := idem(ord, pid, 0, seq[pid], 2)
		seq[pid] += 2
		return b
	}
	for range 3 {
		commit(next(0, 1), next(1, 2), next(2, 1), next(3, 2))
	}
	// Twelve producers in one append, producer 1 among them twice.
	var wide []metadata.BatchMeta
	for k := range int64(12) {
		wide = append(wide, next(int32(k), 10+k))
	}
	wide = append(wide, next(12, 1), next(13, 1))
	commit(wide...)

	remembered := map[int64]int{} // by producer: batches back from its last
	for i := len(log) - 1; i >= 0; i-- {
		pid := log[i].b.ProducerID
		back := remembered[pid]
		remembered[pid] = back + 1
		b := log[i].b
		b.Ordinal = 0
		for name, c := range map[string]*metadata.Committer{"the same agent": a, "another agent": s.NewCommitter(metadata.CommitConfig{})} {
			out := commitBatches(t, c, tp, b)[0]
			switch {
			case back < metadata.MaxProducerBatches && (!out.Duplicate || out.BaseOffset != log[i].base):
				t.Errorf("retry on %s of producer %d's batch %d back (sequence %d): %+v, want a duplicate at %d", name, pid, back, b.BaseSequence, out, log[i].base)
			case back >= metadata.MaxProducerBatches && !errors.Is(out.Err, metadata.ErrOutOfOrderSequence):
				t.Errorf("retry on %s of producer %d's batch %d back (sequence %d): %+v, want out of order", name, pid, back, b.BaseSequence, out)
			}
		}
	}
}

func TestCommitToDeletedTopicFails(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "gone", 1)
	ctx := ctxT(t)
	c := s.NewCommitter(metadata.CommitConfig{})
	if _, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o", Length: 1, Batches: plain(1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteTopic(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// Recreated under the same name: the old incarnation's commit must not
	// land in the new topic.
	mkTopic(t, s, "gone", 1)
	res, err := c.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 0, Object: "o2", Length: 1, Batches: plain(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Batches[0].Err, metadata.ErrUnknownPartition) {
		t.Fatalf("commit to deleted topic: %+v", res[0].Batches[0])
	}
}

func TestProducerIDBlocksAreDisjoint(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	var (
		mu     sync.Mutex
		firsts []int64
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.AllocateProducerIDs(ctx, 100)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			firsts = append(firsts, f)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	for i, f := range firsts {
		if f != int64(i)*100 {
			t.Fatalf("blocks %v overlap or leave gaps", firsts)
		}
	}
}

// A segment object the compactor marked for deletion can no longer be
// committed: its producers are told to retry, and nothing is written.
func TestCommitOfDoomedObjectFails(t *testing.T) {
	s := newStore(t)
	tp := mkTopic(t, s, "doomed", 1)
	ctx := ctxT(t)
	l, err := s.CampaignCompactor(ctx, "test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())
	fence := l.Fence()
	if err := s.DoomObjects(ctx, fence, []string{"flush/aa/late.seg"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	c := s.NewCommitter(metadata.CommitConfig{})
	res, err := c.Commit(ctx, []metadata.Append{
		{Topic: tp, Partition: 0, Object: "flush/aa/late.seg", Length: 1, Batches: plain(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Batches[0].Err, metadata.ErrObjectDoomed) {
		t.Fatalf("commit of a doomed object: %+v", res[0].Batches[0])
	}
	st, _ := s.GetPartitionState(ctx, tp, 0)
	if st.Next != 0 {
		t.Fatalf("high watermark %d after a refused commit", st.Next)
	}
	// Another object commits fine, and so does the doomed one's partition.
	res, err = c.Commit(ctx, []metadata.Append{
		{Topic: tp, Partition: 0, Object: "flush/bb/fresh.seg", Length: 1, Batches: plain(2)},
	})
	if err != nil || res[0].Batches[0].Err != nil || res[0].Batches[0].BaseOffset != 0 {
		t.Fatalf("fresh object: %v %+v", err, res)
	}
	marks, err := s.DoomMarks(ctx)
	if err != nil || len(marks) != 1 || marks[0].Object != "flush/aa/late.seg" {
		t.Fatalf("doom marks: %v %+v", err, marks)
	}
	if err := s.DeleteDoomMarks(ctx, fence, []string{"flush/aa/late.seg"}); err != nil {
		t.Fatal(err)
	}
}
