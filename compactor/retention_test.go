package compactor

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// Retention by bytes over a shard whose partitions hold very different
// amounts: the large partition's old extents go, the small one keeps all
// of its data, so the entries are rewritten, not deleted, and the objects
// they still reference are not marked. The edits are split to fit a small
// op limit, and every offset from each log start stays readable.
func TestRetentionRewritesSharedEntries(t *testing.T) {
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	bucket := testenv.Bucket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "uneven", Partitions: 2, ShardSize: 2, ReplicationFactor: 1, Configs: map[string]string{"retention.bytes": "20000"}})
	if err != nil {
		t.Fatal(err)
	}
	w := newKeyedWrites(t, store, bucket, tp)
	const flushes = 20 // more rewrites than one edit of 8 ops takes
	for range flushes {
		w.flush(200, 0, 40) // partition 0: about 8 KB of values a flush, compressed to a few KB
	}
	before, err := store.ReadShardLog(ctx, tp.Shard(0))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{ID: "retention", MergeSettle: time.Hour, GCGrace: time.Hour, EtcdMaxTxnOps: 8}, Deps{Store: store, Bucket: bucket, Log: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := store.ReadShardLog(ctx, tp.Shard(0))
	if err != nil {
		t.Fatal(err)
	}
	var held int64
	p0 := 0
	for _, e := range after.Entries {
		if x, ok := e.ExtentOf(0); ok {
			held += x.Length
			p0++
		}
		if _, ok := e.ExtentOf(1); !ok {
			t.Fatalf("entry %d lost partition 1's extent", e.Seq)
		}
	}
	t.Logf("pass %+v; partition 0 keeps %d extents (%d bytes)", st, p0, held)
	if len(after.Entries) != flushes || st.RetentionEntries != 0 || st.RetentionExtents != flushes-p0 || p0 == 0 || flushes-p0 < 8 || held > 20000 {
		t.Fatalf("%d entries left, partition 0 keeps %d extents of %d bytes; pass %+v", len(after.Entries), p0, held, st)
	}
	if got, want := after.State.Partition(0).Start, after.Entries[flushes-p0].Extents[0].First; got != want {
		t.Fatalf("partition 0 starts at %d, its first extent left at %d", got, want)
	}
	// Every object is still referenced by partition 1's extents: none was
	// stamped unreferenced.
	if marks, err := store.ObjectMarks(ctx); err != nil || len(marks) != 0 {
		t.Fatalf("marks %v %v", marks, err)
	}
	// The rewritten entries kept their sequence numbers and watermarks.
	for i, e := range after.Entries {
		b := before.Entries[i]
		if e.Seq != b.Seq || fmt.Sprint(e.Nexts) != fmt.Sprint(b.Nexts) || !slices.Equal(objectKeys(e.Objects), objectKeys(b.Objects)) {
			t.Fatalf("entry %d changed: %+v, was %+v", b.Seq, e.LogEntry, b.LogEntry)
		}
	}
	w.check(ctx)

	// A pass with nothing more to remove changes nothing.
	if st, err := c.RunOnce(ctx); err != nil || st.RetentionExtents != 0 || st.Behind != 0 {
		t.Fatalf("second pass %+v %v", st, err)
	}
}
