package metadata_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// txnCounter counts a Committer's transactions.
type txnCounter struct{ n atomic.Int64 }

func (c *txnCounter) ObserveCommitTxn(time.Duration, metadata.TxnOutcome) { c.n.Add(1) }

// BenchmarkCommit commits flushes one after another, as an agent's commit
// loop does: each flush appends four batches of an idempotent producer to
// every partition of a topic. With 16 partitions a flush is one
// transaction; with 256 it is split to fit etcd's default 128 operations.
// Against the test etcd (embedded unless FLOE_TEST_ETCD_ENDPOINTS names
// one):
//
//	go test -run='^$' -bench=Commit ./metadata/
func BenchmarkCommit(b *testing.B) {
	for _, parts := range []int32{16, 256} {
		b.Run(fmt.Sprintf("partitions-%d", parts), func(b *testing.B) {
			store, err := metadata.NewStore(testenv.Etcd(b), testenv.Cluster(b))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			tp, err := store.CreateTopic(ctx, metadata.TopicSpec{Name: "bench", Partitions: parts, ReplicationFactor: 1})
			if err != nil {
				b.Fatal(err)
			}
			var txns txnCounter
			c := store.NewCommitter(metadata.CommitConfig{Observer: &txns})
			seq := make([]int32, parts)
			flush := 0
			appends := func() []metadata.Append {
				flush++
				out := make([]metadata.Append, parts)
				for p := range parts {
					var batches []metadata.BatchMeta
					for i := range 4 {
						batches = append(batches, metadata.BatchMeta{Ordinal: int32(i), Records: 16, ProducerID: 1000, BaseSequence: seq[p], MinTimestamp: int64(flush), MaxTimestamp: int64(flush)})
						seq[p] += 16
					}
					out[p] = metadata.Append{Topic: tp, Partition: p, Object: fmt.Sprintf("flush/%02x/%08d.seg", flush%256, flush), Offset: int64(p) << 19, Length: 1 << 19, Batches: batches}
				}
				return out
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := c.Commit(ctx, appends())
				if err != nil {
					b.Fatal(err)
				}
				if res[0].Entry == nil {
					b.Fatalf("nothing committed: %+v", res[0])
				}
			}
			b.ReportMetric(float64(txns.n.Load())/float64(b.N), "txns/op")
		})
	}
}
