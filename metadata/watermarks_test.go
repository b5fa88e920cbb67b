package metadata_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

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

// Fetches of many partitions of a shard the watcher does not follow yet
// read it from etcd once, not once each.
func TestWatermarksFirstReadIsShared(t *testing.T) {
	cli := testenv.Etcd(t)
	var txns atomic.Int64
	cli.KV = countingKV{KV: cli.KV, txns: &txns}
	s, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	tp, err := s.CreateTopic(ctx, metadata.TopicSpec{Name: "marks", Partitions: 64, ReplicationFactor: 1, ShardSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewCommitter(metadata.CommitConfig{}).Commit(ctx, []metadata.Append{{Topic: tp, Partition: 5, Object: "o", Offset: 16, Length: 100, Batches: plain(3)}}); err != nil {
		t.Fatal(err)
	}
	w, err := s.StartWatermarkWatcher(ctx, slog.New(slog.DiscardHandler), metadata.WatermarkHooks{})
	if err != nil {
		t.Fatal(err)
	}
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
