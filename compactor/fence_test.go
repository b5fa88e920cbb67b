package compactor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func testBatch(value string, ts int64) []byte {
	return kafkatest.RecordBatch(kafkatest.NoProducer, time.UnixMilli(ts), value)
}

// writeAndCommit writes n single-batch objects for partition 0, as an
// agent would, and commits them.
func writeAndCommit(t *testing.T, store *metadata.Store, bucket segments.Bucket, tp metadata.Topic, n int, ts int64) {
	t.Helper()
	committer := store.NewCommitter(metadata.CommitConfig{})
	for i := range n {
		batch, err := segments.ParseBatch(testBatch(fmt.Sprint("record ", i), ts))
		if err != nil {
			t.Fatal(err)
		}
		b := segments.NewBuilder(segments.CodecZstd)
		b.Append(segments.PartitionKey{TopicID: tp.ID}, batch)
		obj, extents, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		key := segments.NewObjectKey(time.Now(), segments.KindFlush)
		if err := bucket.Put(context.Background(), key, obj); err != nil {
			t.Fatal(err)
		}
		if _, err := committer.Commit(context.Background(), []metadata.Append{{
			Topic: tp, Object: key, ObjectSize: int64(len(obj)), Offset: extents[0].Offset, Length: extents[0].Length,
			Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1, MinTimestamp: ts, MaxTimestamp: ts}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A compactor deposed mid-flight (its lease lost, another elected) writes
// nothing: its retention edits and merge swaps fail on the fence, and the
// merged object it wrote is removed. (It may still write producer
// snapshots, which are not the compactor's state: any agent writes the
// same ones from the same log.)
func TestDeposedCompactorWritesNothing(t *testing.T) {
	cli := testenv.Etcd(t)
	store, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := segments.OpenBucket(context.Background(), t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	expiring, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "expiring", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "kept", Partitions: 1, ReplicationFactor: 1, Configs: map[string]string{"retention.ms": "-1"}})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).UnixMilli()
	writeAndCommit(t, store, bucket, expiring, 3, old)
	writeAndCommit(t, store, bucket, kept, 5, old)

	c, err := New(Config{ID: "deposed", MergeSettle: time.Millisecond, GCGrace: time.Hour}, Deps{Store: store, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	one, err := store.CampaignCompactor(ctx, "deposed", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Its lease is lost (as when it lapses), and another compactor leads.
	resp, err := cli.Get(ctx, store.Root()+"compactor/leader/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader keys: %v", err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	two, err := store.CampaignCompactor(ctx, "successor", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer two.Resign(context.Background())

	snapshot := func() string {
		var s string
		for _, tp := range []metadata.Topic{expiring, kept} {
			lg, err := store.ReadShardLog(ctx, tp.Shard(0))
			if err != nil {
				t.Fatal(err)
			}
			s += fmt.Sprintf("%s starts %v@%d:", tp.Name, lg.State.Starts, lg.State.StartsRev)
			for _, e := range lg.Entries {
				s += fmt.Sprintf(" %d-%d@%d %v", e.Seq, e.SeqLast, e.ModRevision, e.Extents)
			}
			s += ";"
		}
		// Merged objects a cancelled pass wrote may be left unreferenced
		// for the collector; flush objects must all stay.
		var objs []string
		bucket.List(ctx, "", func(o segments.ObjectInfo) error {
			if _, kind, _ := segments.ParseObjectKey(o.Key); kind == segments.KindFlush {
				objs = append(objs, o.Key)
			}
			return nil
		})
		return s + fmt.Sprint(objs)
	}
	before := snapshot()
	// The deposed compactor's pass: retention of "expiring" fails first.
	if _, err := c.pass(ctx, one.Fence()); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed pass: %v", err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the deposed compactor changed state:\nbefore %s\nafter  %s", before, after)
	}
	// Its merge of "kept" fails too, and leaves no object behind.
	lg, err := store.ReadShardLog(ctx, kept.Shard(0))
	if err != nil || len(lg.Entries) != 5 {
		t.Fatalf("log of kept: %d entries, %v", len(lg.Entries), err)
	}
	w := shardWork{id: kept.Shard(0), topic: kept, settings: metadata.BrokerConfig{}.Settings(kept.Configs)}
	job := &mergeJob{runs: []*mergeRun{newMergeRun(w, lg.Entries[:4], c.cfg.PartitionObjectBytes)}}
	var ps PassStats
	if err := c.runJob(ctx, one.Fence(), job, &ps); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed merge: %v", err)
	}
	if ps.ObjectsWritten != 1 {
		t.Fatalf("the deposed merge wrote %d objects", ps.ObjectsWritten)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the deposed merge changed state:\nbefore %s\nafter  %s", before, after)
	}
	bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		if o.Key == job.runs[0].placed[0].obj.ref.Key {
			t.Errorf("the deposed merge left its object %s", o.Key)
		}
		return nil
	})
	// Whatever the deposed compactor wrote to the bucket is referenced by
	// nothing.
	refs := map[string]bool{}
	store.ForEachLogEntry(ctx, func(_ metadata.ShardID, e metadata.LogEntry) error {
		for _, o := range e.Objects {
			refs[o.Key] = true
		}
		return nil
	})
	bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		if _, kind, _ := segments.ParseObjectKey(o.Key); kind == segments.KindMerged && refs[o.Key] {
			t.Errorf("merged object %s of the deposed compactor is referenced", o.Key)
		}
		return nil
	})

	// The successor's pass does the work.
	st, err := c.pass(ctx, two.Fence())
	if err != nil {
		t.Fatal(err)
	}
	// expiring: all three extents go, two entries with them (the latest
	// is kept, empty); kept: the four entries before its latest merge.
	if st.RetentionExtents != 3 || st.RetentionEntries != 2 || st.Merges != 1 || st.MergedEntries != 4 || st.ObjectsWritten != 1 {
		t.Fatalf("successor's pass %+v", st)
	}
}
