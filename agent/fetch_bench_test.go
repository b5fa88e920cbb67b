package agent_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// BenchmarkFetchPath reads a 64 MiB topic of 16 partitions (1 KiB random
// records, 8 MiB segment objects, so 512 KiB extents) from offset 0 to its
// end with Fetch requests shaped like franz-go's defaults (50 MiB per
// request, 1 MiB per partition), one request at a time:
//
//   - warm: every extent is in the agent's cache;
//
//   - warm-4096: the same over 4096 partitions, every flush writing to
//     every one (extents of a few KiB): what serving costs per MiB when
//     data is spread thin;
//
//   - warm-group-4096: the same read by four consumers at once, each
//     fetching every fourth partition: responses of a thousand partitions,
//     each a quarter of the agent's fetch memory;
//
//   - cold: the cache holds 3/4 of the topic, so reading it from the start
//     finds nothing cached (LRU): every extent is a GET, from a bucket that
//     adds 5 ms to each (an object store's first byte, which loopback
//     MinIO or a directory do not have);
//
//   - cold-group: the same, read by four consumers at once, each fetching
//     every fourth partition, as the members of a consumer group do;
//
//   - cold-group-4096: the same over 4096 partitions: what a group's
//     fetches of a thousand partitions each cost when the reads share
//     the agent's fetch memory.
//
//     go test -run='^$' -bench=FetchPath -benchmem ./agent/
func BenchmarkFetchPath(b *testing.B) {
	for _, tc := range []struct {
		name       string
		partitions int32
		cache      int64
		delay      time.Duration
		members    int
	}{
		{"warm", fetchBenchPartitions, 1 << 30, 0, 1},
		{"warm-4096", 4096, 1 << 30, 0, 1},
		{"warm-group-4096", 4096, 1 << 30, 0, 4},
		{"cold", fetchBenchPartitions, fetchBenchBytes * 3 / 4, 5 * time.Millisecond, 1},
		{"cold-group", fetchBenchPartitions, fetchBenchBytes * 3 / 4, 5 * time.Millisecond, 4},
		{"cold-group-4096", 4096, fetchBenchBytes * 3 / 4, 5 * time.Millisecond, 4},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newFetchFixture(b, tc.partitions, tc.cache, tc.delay)
			f.read(b, tc.members) // warm the cache (or not)
			b.SetBytes(f.bytes)
			b.ReportAllocs()
			gets := f.bucket.gets.Load()
			cpu := testenv.ProcessCPU()
			b.ResetTimer()
			for b.Loop() {
				f.read(b, tc.members)
			}
			b.ReportMetric(float64(f.bucket.gets.Load()-gets)/float64(b.N), "GETs/op")
			// The agent's and the client's CPU per op.
			b.ReportMetric(float64((testenv.ProcessCPU()-cpu).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

type fetchFixture struct {
	bucket  *slowBucket
	cl      *kgo.Client
	node    int32
	topicID [16]byte
	topic   string
	ends    map[int32]int64
	bytes   int64
}

const (
	fetchBenchPartitions = 16
	fetchBenchBytes      = 64 << 20
	fetchBenchRecord     = 1 << 10
)

func newFetchFixture(b *testing.B, partitions int32, cacheBytes int64, delay time.Duration) *fetchFixture {
	b.Helper()
	store, err := metadata.NewStore(testenv.Etcd(b), testenv.Cluster(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := segments.OpenBucket(ctx, b.TempDir(), segments.BucketOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Close() })
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second, CacheBytes: cacheBytes}
	cfg.Writer.FlushInterval = 50 * time.Millisecond
	bucket := &slowBucket{Bucket: dir, delay: delay}
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: bucket})
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Shutdown(context.Background()) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ProducerLinger(0), kgo.MaxBufferedBytes(fetchBenchBytes), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	const topic = "fetch-bench"
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, fetchBenchRecord)
	for i := 0; i < fetchBenchBytes/fetchBenchRecord; i++ {
		v := make([]byte, len(value))
		rand.Read(v)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	f := &fetchFixture{bucket: bucket, cl: cl, node: a.NodeID(), topic: topic, ends: map[int32]int64{}}
	ends.Each(func(o kadm.ListedOffset) { f.ends[o.Partition] = o.Offset })
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	f.topicID = md.Topics[topic].ID
	return f
}

// read fetches every partition from 0 to its end, with members readers
// at once, each taking every members-th partition.
func (f *fetchFixture) read(b *testing.B, members int) {
	var wg sync.WaitGroup
	var total atomic.Int64
	for m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var parts []int32
			for p := range f.ends {
				if int(p)%members == m {
					parts = append(parts, p)
				}
			}
			total.Add(f.readParts(b, parts))
		}()
	}
	wg.Wait()
	f.bytes = total.Load()
}

// readParts fetches partitions from 0 to their ends and returns the bytes
// of batches read.
func (f *fetchFixture) readParts(b *testing.B, parts []int32) int64 {
	next := map[int32]int64{}
	for _, p := range parts {
		if f.ends[p] > 0 {
			next[p] = 0
		}
	}
	var total int64
	ctx := context.Background()
	for empty := 0; len(next) > 0; {
		if empty == 20 {
			for p, off := range next {
				b.Fatalf("20 fetches in a row returned nothing; %d partitions left, e.g. %d at %d of %d", len(next), p, off, f.ends[p])
			}
		}
		req := kmsg.NewPtrFetchRequest()
		req.Version = 13
		req.MaxWaitMillis = 500
		req.MinBytes = 1
		req.MaxBytes = 50 << 20
		rt := kmsg.NewFetchRequestTopic()
		rt.TopicID = f.topicID
		for p, off := range next {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = off
			rp.PartitionMaxBytes = 1 << 20
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, f.cl.Broker(int(f.node)))
		if err != nil {
			b.Error(err)
			return total
		}
		empty++
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					b.Errorf("partition %d: error %d", p.Partition, p.ErrorCode)
					return total
				}
				if len(p.RecordBatches) > 0 {
					empty = 0
				}
				total += int64(len(p.RecordBatches))
				last, ok := lastOffset(p.RecordBatches)
				if !ok {
					continue
				}
				if last+1 >= f.ends[p.Partition] {
					delete(next, p.Partition)
				} else {
					next[p.Partition] = last + 1
				}
			}
		}
	}
	return total
}

// lastOffset is the last offset in a run of record batches (of those
// that parse).
func lastOffset(batches []byte) (int64, bool) {
	rs, _ := batchOffsets(batches)
	if len(rs) == 0 {
		return 0, false
	}
	return rs[len(rs)-1][1], true
}

// batchOffsets returns the first and last offset of each record batch in
// raw, up to the first that does not parse (then with an error).
func batchOffsets(raw []byte) ([][2]int64, error) {
	var out [][2]int64
	for len(raw) > 0 {
		if len(raw) < 12 {
			return out, fmt.Errorf("%d stray bytes after the batches", len(raw))
		}
		n := 12 + int(int32(uint32(raw[8])<<24|uint32(raw[9])<<16|uint32(raw[10])<<8|uint32(raw[11])))
		var b kmsg.RecordBatch
		if n > len(raw) || b.ReadFrom(raw[:n]) != nil {
			return out, fmt.Errorf("a batch of %d bytes in %d: unreadable", n, len(raw))
		}
		out = append(out, [2]int64{b.FirstOffset, b.FirstOffset + int64(b.LastOffsetDelta)})
		raw = raw[n:]
	}
	return out, nil
}

// slowBucket adds a delay before every ranged GET, as an object store's
// time to first byte.
type slowBucket struct {
	segments.Bucket
	delay time.Duration
	gets  atomic.Int64
}

func (s *slowBucket) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	s.gets.Add(1)
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Bucket.GetRange(ctx, key, off, n)
}
