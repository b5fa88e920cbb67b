package agent_test

import (
	"context"
	"encoding/binary"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// BenchmarkTailLatency measures end to end latency, from Produce to a
// tailing consumer receiving the record, at a 20 ms flush: 16 partitions,
// 2000 records/s. It reports the median and 99th percentile, and how many
// reads of index entries the agent made in etcd per flush (a tailing
// fetch needs the entry of every new extent).
//
//	go test -run='^$' -bench=TailLatency ./agent/
func BenchmarkTailLatency(b *testing.B) {
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
	reg := prometheus.NewRegistry()
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	cfg.Writer.FlushInterval = 20 * time.Millisecond
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: dir, Registry: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Shutdown(context.Background()) })
	const topic = "tail"
	prod, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ProducerLinger(15*time.Millisecond), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(prod.Close)
	if _, err := kadm.NewClient(prod).CreateTopic(ctx, 16, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(time.Second))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cons.Close)

	received := make(chan time.Duration, 1<<16)
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	go func() {
		for cctx.Err() == nil {
			fs := cons.PollFetches(cctx)
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				received <- now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value))))
			})
		}
	}()
	// Let the consumer reach the (empty) end of every partition.
	prod.ProduceSync(ctx, &kgo.Record{Value: binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))})
	<-received
	loads := func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if strings.HasSuffix(mf.GetName(), "fetch_index_loads_total") {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
			_ = mf
		}
		return 0
	}
	loads0 := loads()

	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if n%2 == 0 {
			<-tick.C
		}
		n++
		v := make([]byte, 512)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		prod.Produce(ctx, &kgo.Record{Key: []byte{byte(n), byte(n >> 8)}, Value: v}, nil)
	}
	lats := make([]time.Duration, 0, n)
	for range n {
		select {
		case d := <-received:
			lats = append(lats, d)
		case <-time.After(30 * time.Second):
			b.Fatalf("received %d of %d records", len(lats), n)
		}
	}
	b.StopTimer()
	flushes := time.Since(start).Seconds() / cfg.Writer.FlushInterval.Seconds()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	b.ReportMetric(float64(lats[len(lats)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lats[len(lats)*99/100])/1e6, "p99-ms")
	b.ReportMetric((loads()-loads0)/flushes, "index-reads/flush")
}
