package compactor

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// keyedBatch is one record of key with value, uncompressed.
func keyedBatch(t *testing.T, key, value string, ts int64) segments.Batch {
	t.Helper()
	body := segments.AppendRecord(nil, 0, 0, []byte(key), []byte(value))
	raw := segments.AppendBatch(nil, segments.BatchHeader{
		BaseTimestamp: ts, MaxTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: 1,
	}, body)
	b, err := segments.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A clean whose shard edit may have applied (etcd did not answer) keeps
// the object it wrote: the edit did apply here, and deleting the object
// would have left the index naming an object that is gone, losing the
// records it kept.
func TestCleanWhoseEditMayHaveAppliedKeepsItsObject(t *testing.T) {
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
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
	tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "changelog", Partitions: 1, ReplicationFactor: 1,
		Configs: map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}})
	if err != nil {
		t.Fatal(err)
	}
	committer := store.NewCommitter(metadata.CommitConfig{})
	ts := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 4 {
		b := segments.NewBuilder(segments.CodecZstd)
		b.Append(segments.PartitionKey{TopicID: tp.ID}, keyedBatch(t, "k", fmt.Sprint("v", i), ts))
		obj, extents, err := b.Finish()
		if err != nil {
			t.Fatal(err)
		}
		key := segments.NewObjectKey(time.Now(), segments.KindFlush)
		if err := bucket.Put(ctx, key, obj); err != nil {
			t.Fatal(err)
		}
		if _, err := committer.Commit(ctx, []metadata.Append{{
			Topic: tp, Object: key, ObjectSize: int64(len(obj)), Offset: extents[0].Offset, Length: extents[0].Length,
			Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1, MinTimestamp: ts, MaxTimestamp: ts}},
		}}); err != nil {
			t.Fatal(err)
		}
	}

	c, err := New(Config{ID: "ambiguous", MergeSettle: time.Hour, GCGrace: time.Hour}, Deps{Store: store, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	lead, err := store.CampaignCompactor(ctx, "ambiguous", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer lead.Resign(context.Background())
	applied := 0
	c.editShard = func(ctx context.Context, f metadata.Fence, e metadata.ShardEdit) (int64, error) {
		rev, err := store.EditShard(ctx, f, e)
		if err != nil {
			return rev, err
		}
		applied++
		return 0, errors.New("read tcp 127.0.0.1:2379: connection reset by peer")
	}
	c.pass(ctx, lead.Fence())
	if applied == 0 {
		t.Fatal("the pass cleaned nothing")
	}
	referencedExist := func() {
		t.Helper()
		lg, err := store.ReadShardLog(ctx, tp.Shard(0))
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]bool{}
		if err := bucket.List(ctx, "", func(o segments.ObjectInfo) error { stored[o.Key] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for _, e := range lg.Entries {
			for _, o := range e.Objects {
				if !stored[o.Key] {
					t.Fatalf("entry %d names %s, which is gone", e.Seq, o.Key)
				}
			}
		}
	}
	referencedExist()

	// The next pass, with etcd answering, carries on from what applied.
	c.editShard = store.EditShard
	if _, err := c.pass(ctx, lead.Fence()); err != nil {
		t.Fatal(err)
	}
	referencedExist()
}
