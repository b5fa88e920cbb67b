package metadata_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// countingKV counts the transactions a client sends.
type countingKV struct {
	clientv3.KV
	txns *atomic.Int64
}

func (k countingKV) Txn(ctx context.Context) clientv3.Txn {
	k.txns.Add(1)
	return k.KV.Txn(ctx)
}

// marksFixture is a topic of one 64-partition shard whose partition 5
// holds 3 records, a watcher of it, and a count of the etcd transactions
// the store sends.
type marksFixture struct {
	topic     metadata.Topic
	committer *metadata.Committer
	watcher   *metadata.WatermarkWatcher
	txns      *atomic.Int64
}

func newMarksFixture(t *testing.T) marksFixture {
	t.Helper()
	cli := testenv.Etcd(t)
	f := marksFixture{txns: new(atomic.Int64)}
	cli.KV = countingKV{KV: cli.KV, txns: f.txns}
	s, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if f.topic, err = s.CreateTopic(ctx, metadata.TopicSpec{Name: "marks", Partitions: 64, ReplicationFactor: 1, ShardSize: 64}); err != nil {
		t.Fatal(err)
	}
	f.committer = s.NewCommitter(metadata.CommitConfig{})
	if _, err := f.committer.Commit(ctx, []metadata.Append{{Topic: f.topic, Partition: 5, Object: "o", Offset: 16, Length: 100, Batches: plain(3)}}); err != nil {
		t.Fatal(err)
	}
	if f.watcher, err = s.StartWatermarkWatcher(ctx, slog.New(slog.DiscardHandler), metadata.WatermarkHooks{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// Fetches of many partitions of a shard the watcher does not follow yet
// read it from etcd once, not once each.
func TestWatermarksFirstReadIsShared(t *testing.T) {
	ctx := ctxT(t)
	f := newMarksFixture(t)
	tp, w, txns := f.topic, f.watcher, f.txns
	before := txns.Load()
	var wg sync.WaitGroup
	for p := range int32(64) {
		wg.Go(func() {
			m, err := w.Get(ctx, tp, p)
			if err != nil {
				t.Error(err)
			}
			if want := map[bool]int64{true: 3, false: 0}[p == 5]; m.Next != want {
				t.Errorf("partition %d: high watermark %d, want %d", p, m.Next, want)
			}
		})
	}
	wg.Wait()
	if n := txns.Load() - before; n != 1 {
		t.Fatalf("64 concurrent first reads of one shard sent %d etcd transactions, want 1", n)
	}
}

// TestWatermarksRefreshIsShared: fetches that confirm a shard's
// watermarks with etcd share reads: concurrent refreshes of one shard
// send one transaction, a refresh satisfied by a read begun after its
// time sends none, and a later one reads again and sees a new commit.
func TestWatermarksRefreshIsShared(t *testing.T) {
	ctx := ctxT(t)
	f := newMarksFixture(t)
	tp, w, txns, committer := f.topic, f.watcher, f.txns, f.committer
	if _, err := w.Get(ctx, tp, 5); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	before := txns.Load()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if err := w.Refresh(ctx, tp.Shard(5), since); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := txns.Load() - before; n != 1 {
		t.Fatalf("64 concurrent refreshes of one shard sent %d etcd transactions, want 1", n)
	}
	before = txns.Load()
	if err := w.Refresh(ctx, tp.Shard(5), since); err != nil {
		t.Fatal(err)
	}
	if n := txns.Load() - before; n != 0 {
		t.Fatalf("a refresh already satisfied sent %d etcd transactions, want 0", n)
	}
	if _, err := committer.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 5, Object: "o2", Offset: 16, Length: 100, Batches: plain(4)}}); err != nil {
		t.Fatal(err)
	}
	before = txns.Load()
	if err := w.Refresh(ctx, tp.Shard(5), time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := txns.Load() - before; n < 1 {
		t.Fatalf("a refresh after a commit sent no etcd transaction")
	}
	if m, _ := w.Cached(tp, 5); m.Next != 7 {
		t.Fatalf("after the refresh, partition 5's high watermark is %d, want 7", m.Next)
	}
}

// stalledWatcher is an etcd watcher whose watches deliver nothing: the
// watch lags forever.
type stalledWatcher struct{ clientv3.Watcher }

func (stalledWatcher) Watch(ctx context.Context, _ string, _ ...clientv3.OpOption) clientv3.WatchChan {
	ch := make(chan clientv3.WatchResponse)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// The watcher's owner learns what raises a shard's watermarks before
// readers can see them raised: an entry the watch delivers (OnEntry), and
// a read from etcd ahead of the watch (OnAhead). Its aborted transactions
// are then known wherever the stable offset says its records are.
func TestWatermarkHooksRunBeforeTheMarksMove(t *testing.T) {
	ctx := ctxT(t)
	cli := testenv.Etcd(t)
	cli.Watcher = stalledWatcher{cli.Watcher}
	s, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	tp, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "marks", Partitions: 64, ReplicationFactor: 1, ShardSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	committer := s.NewCommitter(metadata.CommitConfig{})
	commit := func(n int32) {
		t.Helper()
		if _, err := committer.Commit(ctx, []metadata.Append{{Topic: tp, Partition: 5, Object: "o", Offset: 16, Length: 100, Batches: plain(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	commit(3)
	var w *metadata.WatermarkWatcher
	var aheads, entries atomic.Int64
	seen := func() int64 {
		m, _ := w.Cached(tp, 5)
		return m.Next
	}
	var want atomic.Int64 // the high watermark a hook must still see
	w, err = s.StartWatermarkWatcher(ctx, slog.New(slog.DiscardHandler), metadata.WatermarkHooks{
		OnAhead: func(metadata.ShardID) {
			aheads.Add(1)
			if got := seen(); got != want.Load() {
				t.Errorf("OnAhead ran with the high watermark already at %d, want %d", got, want.Load())
			}
		},
		OnEntry: func(metadata.ShardID, *metadata.LogEntry) {
			entries.Add(1)
			if got := seen(); got != want.Load() {
				t.Errorf("OnEntry ran with the high watermark already at %d, want %d", got, want.Load())
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// A first read of the shard: its entries came before the watch.
	if m, err := w.Get(ctx, tp, 5); err != nil || m.Next != 3 {
		t.Fatalf("first read: %+v, %v; want 3", m, err)
	}
	commit(4)
	want.Store(3)
	if err := w.Refresh(ctx, tp.Shard(5), time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := seen(); got != 7 || aheads.Load() != 2 {
		t.Fatalf("after a refresh ahead of the watch: high watermark %d, OnAhead ran %d times; want 7 and 2", got, aheads.Load())
	}
	// Nothing new: no call.
	if err := w.Refresh(ctx, tp.Shard(5), time.Now()); err != nil {
		t.Fatal(err)
	}
	if aheads.Load() != 2 {
		t.Fatalf("a refresh finding nothing new ran OnAhead (%d times in all)", aheads.Load())
	}
	// An entry learned first-hand.
	want.Store(7)
	nexts := make([]int64, 64)
	nexts[5] = 10
	w.Observe(tp.Shard(5), &metadata.LogEntry{Seq: 99, SeqLast: 99, Nexts: nexts})
	if got := seen(); got != 10 || entries.Load() != 1 {
		t.Fatalf("after an observed entry: high watermark %d, OnEntry ran %d times; want 10 and 1", got, entries.Load())
	}
}
