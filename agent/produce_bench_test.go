package agent_test

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// BenchmarkProduceLatency produces 1 KiB records with keys over 16
// partitions, five every millisecond, with an idempotent franz-go client
// whose linger (a quarter of the agent's 100 ms flush interval) spreads
// its five produce requests in flight over more than one flush, as floe
// bench's latency phase does, and reports the latency of a record, from
// Produce to its promise, at the median and the 99th percentile. The floor
// is the linger and the flush interval's wait (about half of each on
// average) plus a PUT and a commit to a directory bucket and embedded
// etcd.
//
//	go test -run='^$' -bench=ProduceLatency ./agent/
func BenchmarkProduceLatency(b *testing.B) {
	store, err := metadata.NewStore(testenv.Etcd(b), testenv.Cluster(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := segments.OpenBucket(ctx, b.TempDir(), segments.BucketOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Close() })
	const flush = 100 * time.Millisecond
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	cfg.Writer.FlushInterval = flush
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: dir})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Shutdown(context.Background()) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ProducerLinger(flush/4), kgo.DefaultProduceTopic("latency"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 16, 1, nil, "latency"); err != nil {
		b.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}

	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	key := 0
	for b.Loop() {
		if key%5 == 0 {
			<-tick.C
		}
		key++
		wg.Add(1)
		start := time.Now()
		cl.Produce(ctx, &kgo.Record{Key: []byte{byte(key), byte(key >> 8)}, Value: make([]byte, 1024)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			lats = append(lats, time.Since(start))
			mu.Unlock()
		})
	}
	wg.Wait()
	b.StopTimer()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2])/1e6, "p50-ms")
		b.ReportMetric(float64(lats[len(lats)*99/100])/1e6, "p99-ms")
	}
}
