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
// loop does, one log entry per shard. Each flush carries, for every
// partition of a topic, batches of the case's idempotent producers: one
// producer's four batches (partitions-N), or one batch from each of
// perFlush producers taken in turn from a fleet (partitions-N-producers-M,
// as many producers' single-record batches over a wide topic). It reports
// the transactions and etcd bytes written per flush (and what log entry
// version 2 would have written): 16 partitions are 16
// shards of one, 1024 are 16 shards of 64, 4096 are 64 shards of 64.
// Against the test etcd (embedded unless FLOE_TEST_ETCD_ENDPOINTS names
// one):
//
//	go test -run='^$' -bench=Commit ./metadata/
func BenchmarkCommit(b *testing.B) {
	cases := []struct {
		name                string
		parts               int32
		fleet, perFlush, of int // producers in all, per partition per flush, batches each
	}{
		{"partitions-16", 16, 1, 1, 4},
		{"partitions-1024", 1024, 1, 1, 4},
		{"partitions-4096", 4096, 1, 1, 4},
		{"partitions-16-producers-4", 16, 4, 4, 1},
		{"partitions-4096-producers-4", 4096, 4, 4, 1},
		{"partitions-256-producers-2000", 256, 2000, 16, 1},
	}
	for _, bc := range cases {
		parts := bc.parts
		b.Run(bc.name, func(b *testing.B) {
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
			var (
				txns txnCounter
				v2   atomic.Int64 // what version 2 of the entries would take
			)
			c := store.NewCommitter(metadata.CommitConfig{Observer: &txns, OnCommit: func(_ metadata.ShardID, e *metadata.LogEntry) {
				v2.Add(int64(len(e.EncodeVersion(2))))
			}})
			now := time.Now().UnixMilli()
			seq := make([][]int32, bc.fleet) // by producer, then partition
			for i := range seq {
				seq[i] = make([]int32, parts)
			}
			flush := 0
			appends := func() []metadata.Append {
				flush++
				out := make([]metadata.Append, parts)
				for p := range parts {
					var batches []metadata.BatchMeta
					for k := range bc.perFlush {
						id := ((flush-1)*bc.perFlush + k) % bc.fleet
						for range bc.of {
							batches = append(batches, metadata.BatchMeta{Ordinal: int32(len(batches)), Records: 16, ProducerID: int64(1000 + id), BaseSequence: seq[id][p], MinTimestamp: now + int64(flush), MaxTimestamp: now + int64(flush) + 5})
							seq[id][p] += 16
						}
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
			b.ReportMetric(float64(c.Stats().EntryBytes)/float64(b.N), "etcd-bytes/op")
			b.ReportMetric(float64(v2.Load())/float64(b.N), "v2-bytes/op")
		})
	}
}
