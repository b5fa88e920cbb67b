package compactor

import (
	"context"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// A job whose runs' swaps do not all apply: a run whose entries changed
// since they were read loses its swap (ErrConflict) and its shard's log is
// left as it was; the object it shares with a run that swapped stays, and
// the object only it used is deleted at once.
func TestMergeConflictLeavesTheLogAndDropsItsObjects(t *testing.T) {
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var writes []*keyedWrites
	for _, name := range []string{"loses", "wins"} {
		tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: name, Partitions: 2, ShardSize: 2, ReplicationFactor: 1})
		if err != nil {
			t.Fatal(err)
		}
		w := newKeyedWrites(t, store, bucket, tp)
		for range 5 {
			w.flush(300, 0, 20) // partition 0 gets an object of its own
		}
		writes = append(writes, w)
	}
	c, err := New(Config{ID: "conflict", PartitionObjectBytes: 4 << 10}, Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := store.CampaignCompactor(ctx, "conflict", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.Background())

	job := &mergeJob{}
	var before []metadata.ShardLog
	for _, w := range writes {
		lg, err := store.ReadShardLog(ctx, w.tp.Shard(0))
		if err != nil {
			t.Fatal(err)
		}
		r := newMergeRun(shardWork{id: lg.Shard, topic: w.tp}, lg.Entries[:4], c.cfg.PartitionObjectBytes)
		if len(r.own) != 1 || r.own[0] != 0 || r.shared == 0 {
			t.Fatalf("run of %s: own %v, %d shared bytes", w.tp.Name, r.own, r.shared)
		}
		job.runs = append(job.runs, r)
		before = append(before, lg)
	}
	// An entry of "loses" changes after the plan read it.
	lg := before[0]
	e := lg.Entries[1]
	if _, err := store.EditShard(ctx, l.Fence(), metadata.ShardEdit{Shard: lg.Shard, Put: []metadata.StoredLogEntry{e}}); err != nil {
		t.Fatal(err)
	}

	var ps PassStats
	if err := c.runJob(ctx, l.Fence(), job, &ps); err != nil {
		t.Fatal(err)
	}
	// One shared object and one object of its own per run.
	if ps.ObjectsWritten != 3 || ps.Merges != 1 || ps.MergedEntries != 4 || ps.Errors != 0 {
		t.Fatalf("job %+v", ps)
	}
	exists := func(key string) bool {
		rc, err := bucket.GetRange(ctx, key, 0, 1)
		if err == nil {
			rc.Close()
		}
		return err == nil
	}
	loses, wins := job.runs[0], job.runs[1]
	shared, ownLoses, ownWins := loses.placed[1].obj, loses.placed[0].obj, wins.placed[0].obj
	if wins.placed[1].obj != shared || !exists(shared.ref.Key) || !exists(ownWins.ref.Key) {
		t.Fatal("an object the swapped run references is gone")
	}
	if exists(ownLoses.ref.Key) {
		t.Fatalf("%s, used only by the run that lost its swap, is still in the bucket", ownLoses.ref.Key)
	}
	after, err := store.ReadShardLog(ctx, before[0].Shard)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Entries) != 5 || after.Entries[0].Flags&metadata.EntryMerged != 0 {
		t.Fatalf("the log of the run that lost its swap changed: %d entries", len(after.Entries))
	}
	won, err := store.ReadShardLog(ctx, before[1].Shard)
	if err != nil {
		t.Fatal(err)
	}
	if m := won.Entries[0]; len(won.Entries) != 2 || m.Flags&metadata.EntryMerged == 0 || m.SeqLast != 4 || len(m.Objects) != 2 {
		t.Fatalf("the log of the run that swapped: %d entries, first %+v", len(won.Entries), m.LogEntry)
	}
	for _, w := range writes {
		w.check(ctx)
	}
	// The objects of the merged entry are merged objects.
	for _, o := range won.Entries[0].Objects {
		if _, kind, _ := segments.ParseObjectKey(o.Key); kind != segments.KindMerged {
			t.Fatalf("merged entry references %s", o.Key)
		}
	}
}
