package compactor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

func testBatch(value string, ts int64) []byte {
	rec := kmsg.NewRecord()
	rec.Value = []byte(value)
	rec.Length = int32(len(rec.AppendTo(nil)) - 1)
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.PartitionLeaderEpoch = -1
	b.ProducerID, b.ProducerEpoch, b.FirstSequence = -1, -1, -1
	b.FirstTimestamp, b.MaxTimestamp = ts, ts
	b.NumRecords = 1
	b.Records = rec.AppendTo(nil)
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// writeAndCommit writes n single-batch objects for one partition, as an
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
			Topic: tp, Object: key, Offset: extents[0].Offset, Length: extents[0].Length,
			Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1, MinTimestamp: ts, MaxTimestamp: ts}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A compactor deposed mid-flight (its lease lost, another elected) writes
// nothing: its retention trims and merge swaps fail on the fence, and the
// merged object it wrote is removed.
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
			id := metadata.PartitionID{Topic: tp.ID}
			st, _ := store.GetPartitionState(ctx, id)
			idx, _ := store.PartitionIndex(ctx, id)
			s += fmt.Sprintf("%s %d-%d %v;", tp.Name, st.Start, st.Next, idx)
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
	w := partitionWork{id: metadata.PartitionID{Topic: kept.ID}, topic: kept, settings: metadata.BrokerConfig{}.Settings(kept.Configs)}
	idx, _ := store.PartitionIndex(ctx, w.id)
	if err := c.merge(ctx, one.Fence(), w, idx, &PassStats{}); !errors.Is(err, metadata.ErrNotLeader) {
		t.Fatalf("deposed merge: %v", err)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the deposed merge changed state:\nbefore %s\nafter  %s", before, after)
	}
	// Whatever the deposed compactor wrote to the bucket is referenced by
	// nothing.
	refs := map[string]bool{}
	store.ForEachIndexEntry(ctx, func(_ metadata.PartitionID, e metadata.IndexEntry) error { refs[e.Object] = true; return nil })
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
	if st.RetentionEntries != 3 || st.Merges != 1 || st.MergedEntries != 5 {
		t.Fatalf("successor's pass %+v", st)
	}
}
