package metadata_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/floe-io/floe/metadata"
)

// SeekEntry against a brute-force search of the shard's log, for every
// offset of every partition (and the shard's state against its last
// entry), on a log with gaps in its sequence numbers
// (merged entries, entries removed by retention) and partitions that
// entries skip.
func TestSeekEntryFindsEveryOffset(t *testing.T) {
	s := newStore(t)
	ctx := ctxT(t)
	tp, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "seek", Partitions: 3, ReplicationFactor: 1, ShardSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 13))
	c := s.NewCommitter(metadata.CommitConfig{})
	for i := range 70 {
		var apps []metadata.Append
		for p := range int32(3) {
			if rng.IntN(3) == 0 {
				continue // this entry skips p
			}
			apps = append(apps, metadata.Append{
				Topic: tp, Partition: p, Object: fmt.Sprintf("o%d", i), Offset: 16 + 100*int64(p), Length: 100,
				Batches: plain(int32(1 + rng.IntN(4))),
			})
		}
		if len(apps) == 0 {
			continue
		}
		if _, err := c.Commit(ctx, apps); err != nil {
			t.Fatal(err)
		}
	}
	l := lead(t, s, "c1")
	lg := readLog(t, s, tp, 0)
	// Merge a few runs of entries, and remove the first three.
	var edit metadata.ShardEdit
	edit.Shard, edit.State = lg.Shard, lg.State
	for _, run := range [][2]int{{5, 9}, {20, 21}, {30, 45}} {
		edit.Put = append(edit.Put, merge(lg.Entries[run[0]:run[1]+1], fmt.Sprintf("m%d", run[0])))
		edit.Delete = append(edit.Delete, lg.Entries[run[0]+1:run[1]+1]...)
	}
	edit.Delete = append(edit.Delete, lg.Entries[:3]...)
	edit.Starts = map[int32]int64{}
	for p := range int32(3) {
		edit.Starts[p], _ = lg.Entries[2].Next(p)
	}
	if _, err := s.EditShard(ctx, l.Fence(), edit); err != nil {
		t.Fatal(err)
	}
	entries := readLog(t, s, tp, 0).Entries
	if len(entries) >= len(lg.Entries)-10 {
		t.Fatalf("the edit left %d of %d entries", len(entries), len(lg.Entries))
	}
	// The shard's state is its last entry's, found the same way.
	st, err := s.GetShardState(ctx, lg.Shard)
	if last := entries[len(entries)-1]; err != nil || st.Seq != last.SeqLast || !slices.Equal(st.Nexts, last.Nexts) || st.Starts == nil {
		t.Fatalf("shard state %+v, %v; want the last entry's (seq %d, %v) and the starts", st, err, last.SeqLast, last.Nexts)
	}
	for p := range int32(3) {
		hw, _ := entries[len(entries)-1].Next(p)
		for offset := int64(0); offset <= hw+1; offset++ {
			i := slices.IndexFunc(entries, func(e metadata.StoredLogEntry) bool {
				n, _ := e.Next(p)
				return n > offset
			})
			seek, ok, err := s.SeekEntry(ctx, tp, p, offset)
			if err != nil {
				t.Fatal(err)
			}
			if i < 0 {
				if ok {
					t.Fatalf("p%d offset %d (hw %d): found entry %d", p, offset, hw, seek.Seq)
				}
				continue
			}
			var floor []int64
			if i > 0 {
				floor = entries[i-1].Nexts
			}
			if !ok || seek.Seq != entries[i].Seq || !slices.Equal(seek.Floor, floor) {
				t.Fatalf("p%d offset %d: got %+v %v, want entry %d floor %v", p, offset, seek, ok, entries[i].Seq, floor)
			}
			// The seek's revision reads the log as it saw it.
			got, err := s.ShardWindow(ctx, lg.Shard, seek.Seq, 1, seek.Rev)
			if err != nil || len(got) != 1 || got[0].Seq != seek.Seq {
				t.Fatalf("window at %d: %+v %v", seek.Seq, got, err)
			}
		}
	}
}

// merge returns the merged entry of consecutive entries run, as the
// compactor writes it: at the first one's key, covering them all, its
// extents in one object.
func merge(run []metadata.StoredLogEntry, object string) metadata.StoredLogEntry {
	last := run[len(run)-1]
	m := metadata.StoredLogEntry{ModRevision: run[0].ModRevision, LogEntry: metadata.LogEntry{
		Seq: run[0].Seq, SeqLast: last.SeqLast, Committed: last.Committed, Base: last.Base, Nexts: last.Nexts,
		Flags: metadata.EntryMerged, Objects: []metadata.ObjectRef{{Key: object, Size: 1 << 20}},
	}}
	byPart := map[int32]*metadata.Extent{}
	var parts []int32
	for _, e := range run {
		for _, x := range e.Extents {
			if m := byPart[x.Partition]; m != nil {
				m.Last, m.Length, m.Batches = x.Last, m.Length+x.Length, m.Batches+x.Batches
				continue
			}
			x.Object, x.Skip = 0, nil
			byPart[x.Partition] = &x
			parts = append(parts, x.Partition)
		}
	}
	slices.Sort(parts)
	var at int64 = 16
	for _, p := range parts {
		x := *byPart[p]
		x.Offset = at
		at += x.Length
		m.Extents = append(m.Extents, x)
	}
	return m
}

// BenchmarkSeekEntry finds an offset in a shard log of 64-partition
// entries (the shape keyed writes give at 64 partitions per shard), as a
// reader's index lookup does, at two log lengths: etcd's work per lookup
// should not grow with the log.
func BenchmarkSeekEntry(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("entries-%d", n), func(b *testing.B) {
			s := newStore(b)
			ctx := context.Background()
			tp, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "seek", Partitions: 64, ReplicationFactor: 1, ShardSize: 64})
			if err != nil {
				b.Fatal(err)
			}
			c := s.NewCommitter(metadata.CommitConfig{})
			for i := range n {
				apps := make([]metadata.Append, 64)
				for p := range apps {
					apps[p] = metadata.Append{Topic: tp, Partition: int32(p), Object: fmt.Sprintf("o%d", i), Offset: 16 + 2048*int64(p), Length: 2048, Batches: plain(2)}
				}
				if _, err := c.Commit(ctx, apps); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for b.Loop() {
				offset := rng.Int64N(2 * int64(n))
				if _, ok, err := s.SeekEntry(ctx, tp, rng.Int32N(64), offset); err != nil || !ok {
					b.Fatalf("offset %d: %v %v", offset, ok, err)
				}
			}
		})
	}
}
