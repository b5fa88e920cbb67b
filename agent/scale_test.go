package agent_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/segments"
)

// metricValue sums a counter or gauge family of a registry.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// A consumer of a wide topic reads each flush object about once, however
// many partitions it holds: reads are object-granular and fetches move
// through objects in the order they were written. So does a consumer
// group whose members each read a quarter of the partitions: a chunk read
// for one member has the others' extents decoded at once.
func TestWideTopicIsReadObjectByObject(t *testing.T) {
	for _, members := range []int{1, 4} {
		t.Run(fmt.Sprintf("members-%d", members), func(t *testing.T) { testWideTopicRead(t, members) })
	}
}

func testWideTopicRead(t *testing.T, members int) {
	c := newTestCluster(t)
	writer := c.addAgent(func(cfg *agent.Config) {
		cfg.Writer.FlushInterval = 50 * time.Millisecond
		cfg.Writer.SegmentTargetBytes = 256 << 10
	})
	const parts, records = 512, 4000
	createTopic(t, c, "wide", parts, nil)
	cl := c.clientAt(writer.Addr())
	ctx := testCtx(t)
	for i := range records {
		value := make([]byte, 1024)
		rand.Read(value) // incompressible: objects of the target size
		r := &kgo.Record{Topic: "wide", Key: []byte(fmt.Sprintf("k%d", i)), Value: value}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var objects int
	if err := c.bucket.List(ctx, "flush/", func(segments.ObjectInfo) error { objects++; return nil }); err != nil {
		t.Fatal(err)
	}
	if objects < 4 {
		t.Fatalf("only %d objects written; the test needs several", objects)
	}
	if err := writer.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	c.registry = reg
	reader := c.addAgent(nil)
	var (
		mu    sync.Mutex
		got   = map[int32]int64{}
		total int
	)
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range members {
		consumer := c.clientAt(reader.Addr(), kgo.ConsumeTopics("wide"), kgo.ConsumerGroup("readers"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				fs := consumer.PollFetches(cctx)
				if cctx.Err() != nil {
					return
				}
				fs.EachError(func(_ string, p int32, err error) { t.Errorf("fetch error on %d: %v", p, err) })
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					if r.Offset == got[r.Partition] {
						got[r.Partition]++
						total++
					}
				})
				done := total == records
				mu.Unlock()
				if done {
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if total != records || len(got) != parts {
		t.Fatalf("read %d of %d records in %d partitions", total, records, len(got))
	}
	reads := metricValue(t, reg, "floe_fetch_chunk_reads_total")
	t.Logf("%d objects, %d partitions, %d members: %.0f chunk reads", objects, parts, members, reads)
	if reads < float64(objects) || reads > 1.25*float64(objects)+2 {
		t.Fatalf("%.0f chunk reads for %d objects; each object should be read about once", reads, objects)
	}
}

// A consumer tailing a topic finds what the agent commits in its index
// window, learned first-hand: it does not read the log from etcd again
// for each flush.
func TestTailingReadsNoIndexFromEtcd(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c.registry = reg
	a := c.addAgent(fastFlush)
	createTopic(t, c, "tail", 4, nil)
	producer := c.clientAt(a.Addr())
	consumer := c.clientAt(a.Addr(), kgo.ConsumeTopics("tail"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	ctx := testCtx(t)
	const rounds = 40
	for i := range rounds {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "tail", Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		n := 0
		for n == 0 {
			fs := consumer.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			n = fs.NumRecords()
		}
	}
	loads := metricValue(t, reg, "floe_fetch_index_loads_total")
	t.Logf("%d flushes read as they were committed: %.0f index loads", rounds, loads)
	if loads > 8 {
		t.Fatalf("%.0f index loads for %d flushes tailed: windows are read again from etcd", loads, rounds)
	}
}

// A topic of 10,000 partitions is created, described and written to in
// every partition, and its offsets listed, with fewer etcd keys than
// partitions (one log entry per shard per flush; a key per partition per
// flush would be 10,000 or more).
func TestTenThousandPartitions(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(nil)
	const parts = 10000
	createTopic(t, c, "huge", parts, nil)
	adm := c.admin()
	ctx := testCtx(t)
	td, err := adm.ListTopics(ctx, "huge")
	if err != nil || len(td["huge"].Partitions) != parts {
		t.Fatalf("listed %d partitions, %v", len(td["huge"].Partitions), err)
	}
	cl := c.clientAt(a.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(parts) {
		cl.Produce(ctx, &kgo.Record{Topic: "huge", Partition: p, Value: []byte("x")}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce to %d: %v", p, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Offset != 1 {
			t.Fatalf("partition %d: end %d, %v", o.Partition, o.Offset, o.Err)
		}
		n++
	})
	if n != parts {
		t.Fatalf("%d end offsets", n)
	}
	tp, err := c.store.GetTopic(ctx, "huge")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.store.Client().Get(ctx, c.store.Root()+"log/"+tp.ID.String()+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d log entries for %d shards", resp.Count, tp.Shards())
	if resp.Count >= parts {
		t.Fatalf("%d log entries for %d partitions in %d shards", resp.Count, parts, tp.Shards())
	}
}
