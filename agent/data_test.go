package agent_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/segments"
)

// fastFlush makes agents flush every 20ms so tests run quickly.
func fastFlush(cfg *agent.Config) {
	cfg.Writer.FlushInterval = 20 * time.Millisecond
}

func createTopic(t *testing.T, c *testCluster, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	r, err := c.admin().CreateTopic(testCtx(t), partitions, 1, configs, name)
	if err != nil || r.Err != nil {
		t.Fatalf("creating %s: %v %v", name, err, r.Err)
	}
}

type sent struct {
	key, value []byte
	headers    []kgo.RecordHeader
	ts         time.Time
	partition  int32
	offset     int64
}

// produceAll produces n records with acks=all and idempotence and returns
// what was acknowledged, per partition, in offset order.
func produceAll(t *testing.T, cl *kgo.Client, topic string, n int, keyed bool) map[int32][]sent {
	t.Helper()
	ctx := testCtx(t)
	var (
		mu   sync.Mutex
		acks = map[int32][]sent{}
		wg   sync.WaitGroup
		errs []error
	)
	base := time.Now().Truncate(time.Millisecond)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("value-%07d-%s", i, strings.Repeat("x", i%97))), Timestamp: base.Add(time.Duration(i) * time.Millisecond)}
		if keyed {
			r.Key = []byte(fmt.Sprintf("key-%d", i%101))
		}
		if i%7 == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}
		}
		wg.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			acks[r.Partition] = append(acks[r.Partition], sent{key: r.Key, value: r.Value, headers: r.Headers, ts: r.Timestamp, partition: r.Partition, offset: r.Offset})
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produce errors, first: %v", len(errs), errs[0])
	}
	return acks
}

// consumeAll reads every partition of topic from the start until it has
// want records.
func consumeAll(t *testing.T, c *testCluster, topic string, want int) map[int32][]*kgo.Record {
	t.Helper()
	cl := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	got := map[int32][]*kgo.Record{}
	total := 0
	for total < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timing out", total, want)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch error on %s/%d: %v", topic, p, err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			total++
		})
	}
	return got
}

func checkSame(t *testing.T, acked map[int32][]sent, got map[int32][]*kgo.Record) {
	t.Helper()
	for p, want := range acked {
		// Acks arrive per partition in offset order for one producer.
		recs := got[p]
		if len(recs) != len(want) {
			t.Fatalf("partition %d: read %d records, acknowledged %d", p, len(recs), len(want))
		}
		for i, w := range want {
			r := recs[i]
			if r.Offset != w.offset || int64(i) != r.Offset {
				t.Fatalf("partition %d record %d: offset %d, acknowledged at %d", p, i, r.Offset, w.offset)
			}
			if !bytes.Equal(r.Key, w.key) || !bytes.Equal(r.Value, w.value) || !r.Timestamp.Equal(w.ts) || len(r.Headers) != len(w.headers) {
				t.Fatalf("partition %d offset %d differs: got key %q value %q ts %v", p, r.Offset, r.Key, r.Value, r.Timestamp)
			}
			for j := range w.headers {
				if r.Headers[j].Key != w.headers[j].Key || !bytes.Equal(r.Headers[j].Value, w.headers[j].Value) {
					t.Fatalf("partition %d offset %d: headers differ", p, r.Offset)
				}
			}
		}
	}
}

func TestProduceFetchRoundTrip(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	for _, tc := range []struct {
		name        string
		keyed       bool
		compression kgo.CompressionCodec
	}{
		{"keyed-uncompressed", true, kgo.NoCompression()},
		{"unkeyed-zstd", false, kgo.ZstdCompression()},
		{"keyed-lz4", true, kgo.Lz4Compression()},
		{"unkeyed-snappy", false, kgo.SnappyCompression()},
		{"keyed-gzip", true, kgo.GzipCompression()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t)
			c.addAgent(fastFlush)
			createTopic(t, c, "rt", 4, nil)
			count := n
			if tc.name != "keyed-uncompressed" {
				count = n / 10
			}
			prod := c.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(tc.compression), kgo.ProducerLinger(5*time.Millisecond))
			acked := produceAll(t, prod, "rt", count, tc.keyed)
			got := consumeAll(t, c, "rt", count)
			checkSame(t, acked, got)
			if tc.keyed {
				// A key always lands on the same partition.
				where := map[string]int32{}
				for p, recs := range got {
					for _, r := range recs {
						if q, ok := where[string(r.Key)]; ok && q != p {
							t.Fatalf("key %q on partitions %d and %d", r.Key, q, p)
						}
						where[string(r.Key)] = p
					}
				}
			}
		})
	}
}

// recordBatch encodes a RecordBatch v2 with the given values, as a
// producer would.
func recordBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	return kafkatest.RecordBatch(kafkatest.Producer{ID: pid, Epoch: epoch, Sequence: seq}, time.Now(), values...)
}

// topicID looks a topic's ID up, since kgo sends requests at the highest
// version both sides support and Produce v13 / Fetch v13 name topics by
// ID. A missing topic gets a random ID, which no agent knows.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	md, err := kadm.NewClient(cl).Metadata(testCtx(t), topic)
	if err == nil {
		if td, ok := md.Topics[topic]; ok && td.Err == nil {
			return td.ID
		}
	}
	return [16]byte{0xde, 0xad}
}

func produceRaw(t *testing.T, cl *kgo.Client, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = -1
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rt.TopicID = topicID(t, cl, topic)
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestIdempotentRetryAcrossAgentsIsNotWrittenTwice(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(fastFlush)
	a1 := c.addAgent(fastFlush)
	createTopic(t, c, "idem", 1, nil)
	cl0, cl1 := c.clientAt(a0.Addr()), c.clientAt(a1.Addr())

	pid := initProducerID(t, cl0)
	batch := recordBatch(pid, 0, 0, "a", "b", "c")
	first := produceRaw(t, cl0, "idem", 0, batch)
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first: %+v", first)
	}
	// The same batch retried through the other agent: same offset.
	retry := produceRaw(t, cl1, "idem", 0, recordBatch(pid, 0, 0, "a", "b", "c"))
	if retry.ErrorCode != 0 || retry.BaseOffset != 0 {
		t.Fatalf("retry: %+v", retry)
	}
	next := produceRaw(t, cl1, "idem", 0, recordBatch(pid, 0, 3, "d"))
	if next.ErrorCode != 0 || next.BaseOffset != 3 {
		t.Fatalf("next: %+v", next)
	}
	gap := produceRaw(t, cl0, "idem", 0, recordBatch(pid, 0, 9, "z"))
	if err := kerr.ErrorForCode(gap.ErrorCode); !errors.Is(err, kerr.OutOfOrderSequenceNumber) {
		t.Fatalf("gap: %v", err)
	}
	got := consumeAll(t, c, "idem", 4)
	var vals []string
	for _, r := range got[0] {
		vals = append(vals, string(r.Value))
	}
	if strings.Join(vals, "") != "abcd" {
		t.Fatalf("read %q", vals)
	}
}

// initProducerID gets an idempotent producer ID from an agent.
func initProducerID(t *testing.T, cl *kgo.Client) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp.ProducerID
}

// A producer ID no agent ever allocated is refused with
// UNKNOWN_PRODUCER_ID, before anything is written; one allocated by
// another agent is accepted.
func TestUnallocatedProducerIDIsRefused(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(fastFlush)
	a1 := c.addAgent(fastFlush)
	createTopic(t, c, "pids", 1, nil)
	cl0, cl1 := c.clientAt(a0.Addr()), c.clientAt(a1.Addr())
	pid := initProducerID(t, cl0)

	forged := produceRaw(t, cl1, "pids", 0, recordBatch(pid+1_000_000, 0, 0, "forged"))
	if err := kerr.ErrorForCode(forged.ErrorCode); !errors.Is(err, kerr.UnknownProducerID) || forged.ErrorMessage == nil || !strings.Contains(*forged.ErrorMessage, "never allocated") {
		t.Fatalf("forged producer ID: %v %v", err, forged.ErrorMessage)
	}
	// An epoch bump of a forged ID is refused too.
	bump := kmsg.NewPtrInitProducerIDRequest()
	bump.Version, bump.ProducerID, bump.ProducerEpoch = 4, pid+1_000_000, 0
	if resp, err := bump.RequestWith(testCtx(t), cl1); err != nil || resp.ErrorCode != kerr.UnknownProducerID.Code {
		t.Fatalf("epoch bump of a forged ID: %v %+v", err, resp)
	}
	// The ID a0 allocated is good on a1 too.
	ok := produceRaw(t, cl1, "pids", 0, recordBatch(pid, 0, 0, "real"))
	if ok.ErrorCode != 0 || ok.BaseOffset != 0 {
		t.Fatalf("allocated producer ID: %+v", ok)
	}
	if hw := produceRaw(t, cl0, "pids", 0, recordBatch(-1, -1, -1, "plain")); hw.BaseOffset != 1 {
		t.Fatalf("the forged batch was written: next offset %d", hw.BaseOffset)
	}
}

func TestTwoAgentsWritingOnePartitionGetContiguousOffsets(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(fastFlush)
	a1 := c.addAgent(fastFlush)
	createTopic(t, c, "both", 2, nil)
	clients := []*kgo.Client{c.clientAt(a0.Addr()), c.clientAt(a1.Addr())}
	const perWriter = 60
	var wg sync.WaitGroup
	offsets := make([][]int64, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				r := produceRaw(t, clients[w%2], "both", int32(i%2), recordBatch(-1, -1, -1, fmt.Sprintf("w%d-%d", w, i), "pad"))
				if r.ErrorCode != 0 {
					t.Errorf("writer %d: %v", w, kerr.ErrorForCode(r.ErrorCode))
					return
				}
				offsets[w] = append(offsets[w], r.BaseOffset)
			}
		}()
	}
	wg.Wait()
	got := consumeAll(t, c, "both", 4*perWriter*2)
	for p, recs := range got {
		for i, r := range recs {
			if r.Offset != int64(i) {
				t.Fatalf("partition %d: record %d has offset %d", p, i, r.Offset)
			}
		}
	}
	seen := map[int64]bool{}
	for w := range offsets {
		for i, off := range offsets[w] {
			k := off*2 + int64(i%2)
			if seen[k] {
				t.Fatalf("offset %d of partition %d acknowledged twice", off, i%2)
			}
			seen[k] = true
		}
	}
}

func TestAcknowledgedRecordsSurviveTheirAgent(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(fastFlush)
	c.addAgent(fastFlush)
	createTopic(t, c, "durable", 3, nil)
	prod := c.clientAt(a0.Addr())
	// Route every produce through a0 with raw requests.
	for i := range 30 {
		r := produceRaw(t, prod, "durable", int32(i%3), recordBatch(-1, -1, -1, fmt.Sprint(i)))
		if r.ErrorCode != 0 {
			t.Fatal(kerr.ErrorForCode(r.ErrorCode))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a0.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c.agents = c.agents[1:]
	got := consumeAll(t, c, "durable", 30)
	n := 0
	for _, recs := range got {
		n += len(recs)
	}
	if n != 30 {
		t.Fatalf("read %d of 30 acknowledged records", n)
	}
}

func TestProduceRejectsBadInput(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) { fastFlush(cfg); cfg.AutoCreateTopics = false })
	max := "200"
	createTopic(t, c, "strict", 1, map[string]*string{"max.message.bytes": &max})
	cl := c.client()

	// By ID (Produce v13) a missing topic is UNKNOWN_TOPIC_ID.
	if r := produceRaw(t, cl, "missing", 0, recordBatch(-1, -1, -1, "x")); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.UnknownTopicID) {
		t.Fatalf("missing topic: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := produceRaw(t, cl, "strict", 5, recordBatch(-1, -1, -1, "x")); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.UnknownTopicOrPartition) {
		t.Fatalf("missing partition: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	bad := recordBatch(-1, -1, -1, "x")
	bad[len(bad)-1] ^= 0xff
	if r := produceRaw(t, cl, "strict", 0, bad); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.CorruptMessage) {
		t.Fatalf("bad CRC: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	short := recordBatch(-1, -1, -1, "x")
	binary.BigEndian.PutUint32(short[8:12], 5000)
	if r := produceRaw(t, cl, "strict", 0, short); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.CorruptMessage) {
		t.Fatalf("bad length: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := produceRaw(t, cl, "strict", 0, recordBatch(-1, -1, -1, strings.Repeat("y", 300))); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.MessageTooLarge) {
		t.Fatalf("too large: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// Nothing was written.
	if r := produceRaw(t, cl, "strict", 0, recordBatch(-1, -1, -1, "ok")); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("good batch after bad ones: %+v", r)
	}
}

// With message.timestamp.before.max.ms and after.max.ms set, a batch
// holding a record too far in the past or future is refused with
// INVALID_TIMESTAMP, whichever record of the batch it is and however the
// client compressed it; records within the bounds are accepted. The older
// message.timestamp.difference.max.ms sets both while they are at their
// defaults, and LogAppendTime topics do not check.
func TestProduceTimestampBounds(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	createTopic(t, c, "bounded", 1, map[string]*string{
		"message.timestamp.before.max.ms": kadm.StringPtr("3600000"),
		"message.timestamp.after.max.ms":  kadm.StringPtr("3600000"),
	})
	ctx := testCtx(t)
	now := time.Now()
	at := func(d time.Duration, v string) *kgo.Record {
		return &kgo.Record{Topic: "bounded", Value: []byte(v), Timestamp: now.Add(d)}
	}
	for codec, compression := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "zstd": kgo.ZstdCompression(), "snappy": kgo.SnappyCompression()} {
		// A linger long enough that records produced together share a batch.
		cl := c.client(kgo.ProducerBatchCompression(compression), kgo.ProducerLinger(200*time.Millisecond))
		if err := cl.ProduceSync(ctx, at(-59*time.Minute, "old but within"), at(59*time.Minute, "early but within")).FirstErr(); err != nil {
			t.Fatalf("%s: records within the bounds: %v", codec, err)
		}
		for name, recs := range map[string][]*kgo.Record{
			"past":                 {at(-2*time.Hour, "too old")},
			"future":               {at(2*time.Hour, "too new")},
			"second of the batch":  {at(0, "fine"), at(-2*time.Hour, "too old")},
			"behind a future base": {at(2*time.Hour, "too new"), at(0, "fine")},
		} {
			for _, r := range cl.ProduceSync(ctx, recs...) {
				if !errors.Is(r.Err, kerr.InvalidTimestamp) {
					t.Errorf("%s, %s: record %q: %v, want INVALID_TIMESTAMP", codec, name, r.Record.Value, r.Err)
				}
			}
		}
	}
	r := produceRaw(t, c.client(), "bounded", 0, kafkatest.RecordBatch(kafkatest.NoProducer, now.Add(2*time.Hour), "too new"))
	if !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.InvalidTimestamp) || r.ErrorMessage == nil || !strings.Contains(*r.ErrorMessage, "message.timestamp.before.max.ms=3600000 and after.max.ms=3600000") {
		t.Errorf("raw batch too new: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
	}
	if got := consumeAll(t, c, "bounded", 6); len(got[0]) != 6 {
		t.Fatalf("read %d records, want the 6 within bounds", len(got[0]))
	}

	cl := c.client()
	adm := kadm.NewClient(cl)
	alter := func(configs ...kadm.AlterConfig) {
		t.Helper()
		r, err := adm.AlterTopicConfigs(ctx, configs, "bounded")
		if err != nil || r[0].Err != nil {
			t.Fatal(err, r)
		}
	}
	alter(kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "message.timestamp.before.max.ms"},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "message.timestamp.after.max.ms"},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "message.timestamp.difference.max.ms", Value: kadm.StringPtr("3600000")})
	if err := cl.ProduceSync(ctx, at(-2*time.Hour, "too old")).FirstErr(); !errors.Is(err, kerr.InvalidTimestamp) {
		t.Fatalf("with message.timestamp.difference.max.ms: %v, want INVALID_TIMESTAMP", err)
	}
	alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")})
	if err := cl.ProduceSync(ctx, at(-2*time.Hour, "stamped by the agent")).FirstErr(); err != nil {
		t.Fatalf("LogAppendTime topic: %v", err)
	}
}

func fetchRaw(t *testing.T, cl *kgo.Client, topic string, partition int32, offset int64, maxWait time.Duration) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp, err := kafkatest.FetchRequest(topic, topicID(t, cl, topic), partition, offset, maxWait).RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

func TestFetchOffsetsAndLongPoll(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	createTopic(t, c, "poll", 1, nil)
	cl := c.client()

	if r := fetchRaw(t, cl, "poll", 0, -1, 0); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.OffsetOutOfRange) {
		t.Fatalf("negative offset: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	if r := fetchRaw(t, cl, "poll", 0, 5, 0); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.OffsetOutOfRange) {
		t.Fatalf("beyond the high watermark: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A long poll at the end wakes when a record is committed, well
	// before its 20s wait.
	done := make(chan kmsg.FetchResponseTopicPartition)
	start := time.Now()
	go func() { done <- fetchRaw(t, cl, "poll", 0, 0, 20*time.Second) }()
	time.Sleep(100 * time.Millisecond)
	produceRaw(t, cl, "poll", 0, recordBatch(-1, -1, -1, "wake"))
	r := <-done
	if r.ErrorCode != 0 || len(r.RecordBatches) == 0 || r.HighWatermark != 1 {
		t.Fatalf("long poll: code %d, %d bytes, hw %d", r.ErrorCode, len(r.RecordBatches), r.HighWatermark)
	}
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("long poll returned after %v: it did not wake on the commit", waited)
	}

	// ListOffsets: earliest, latest, by time.
	adm := kadm.NewClient(cl)
	ctx := testCtx(t)
	before := time.Now()
	time.Sleep(5 * time.Millisecond)
	produceRaw(t, cl, "poll", 0, recordBatch(-1, -1, -1, "later"))
	start0, err := adm.ListStartOffsets(ctx, "poll")
	if err != nil {
		t.Fatal(err)
	}
	end0, _ := adm.ListEndOffsets(ctx, "poll")
	if o, _ := start0.Lookup("poll", 0); o.Offset != 0 {
		t.Fatalf("earliest %+v", o)
	}
	if o, _ := end0.Lookup("poll", 0); o.Offset != 2 {
		t.Fatalf("latest %+v", o)
	}
	byTime, _ := adm.ListOffsetsAfterMilli(ctx, before.UnixMilli(), "poll")
	if o, _ := byTime.Lookup("poll", 0); o.Offset != 1 {
		t.Fatalf("after %v: %+v", before, o)
	}
	future, _ := adm.ListOffsetsAfterMilli(ctx, time.Now().Add(time.Hour).UnixMilli(), "poll")
	if o, _ := future.Lookup("poll", 0); o.Offset != -1 && o.Offset != 2 {
		t.Fatalf("after the future: %+v", o)
	}
}

func TestCorruptObjectFailsOnlyItsFetch(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	createTopic(t, c, "bad", 1, nil)
	createTopic(t, c, "good", 1, nil)
	cl := c.client()
	produceRaw(t, cl, "bad", 0, recordBatch(-1, -1, -1, "doomed"))
	// Corrupt every object written so far, then write the healthy topic.
	ctx := testCtx(t)
	var keys []string
	c.bucket.List(ctx, "", func(o segments.ObjectInfo) error {
		keys = append(keys, o.Key)
		return nil
	})
	for _, k := range keys {
		rc, err := c.bucket.GetRange(ctx, k, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		buf.ReadFrom(rc)
		rc.Close()
		data := buf.Bytes()
		for i := 40; i < len(data)-40; i += 7 {
			data[i] ^= 0x5a
		}
		if err := c.bucket.Put(ctx, k, data); err != nil {
			t.Fatal(err)
		}
	}
	produceRaw(t, cl, "good", 0, recordBatch(-1, -1, -1, "fine"))

	r := fetchRaw(t, cl, "bad", 0, 0, 0)
	if err := kerr.ErrorForCode(r.ErrorCode); !errors.Is(err, kerr.CorruptMessage) || len(r.RecordBatches) != 0 {
		t.Fatalf("corrupt object: %v, %d bytes", err, len(r.RecordBatches))
	}
	if r := fetchRaw(t, cl, "good", 0, 0, 0); r.ErrorCode != 0 || len(r.RecordBatches) == 0 {
		t.Fatalf("healthy partition: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// A compacted topic refuses a batch holding a record without a key, as
// Kafka does (INVALID_RECORD naming the record), and nothing of it is
// written; keyed records and tombstones are accepted.
func TestCompactedTopicRefusesRecordsWithoutKeys(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	createTopic(t, c, "changelog", 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")})
	ctx := testCtx(t)
	for codec, compression := range map[string]kgo.CompressionCodec{"none": kgo.NoCompression(), "zstd": kgo.ZstdCompression(), "lz4": kgo.Lz4Compression()} {
		// A linger long enough that records produced together share a batch.
		cl := c.client(kgo.ProducerBatchCompression(compression), kgo.ProducerLinger(200*time.Millisecond), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ok := []*kgo.Record{{Topic: "changelog", Key: []byte("k1"), Value: []byte("v1")}, {Topic: "changelog", Key: []byte("k1")}} // an update and a tombstone
		if err := cl.ProduceSync(ctx, ok...).FirstErr(); err != nil {
			t.Fatalf("%s: keyed records: %v", codec, err)
		}
		mixed := []*kgo.Record{{Topic: "changelog", Key: []byte("k2"), Value: []byte("v2")}, {Topic: "changelog", Value: []byte("no key")}}
		for _, r := range cl.ProduceSync(ctx, mixed...) {
			if !errors.Is(r.Err, kerr.InvalidRecord) {
				t.Errorf("%s: record %q of a batch with a keyless record: %v, want INVALID_RECORD", codec, r.Record.Value, r.Err)
			}
		}
	}
	r := produceRaw(t, c.client(), "changelog", 0, kafkatest.RecordBatch(kafkatest.NoProducer, time.Now(), "no key"))
	if !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.InvalidRecord) || r.ErrorMessage == nil || *r.ErrorMessage != "Compacted topic cannot accept message without key in topic partition changelog-0." ||
		len(r.ErrorRecords) != 1 || r.ErrorRecords[0].RelativeOffset != 0 {
		t.Errorf("raw keyless batch: %v %v %+v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage, r.ErrorRecords)
	}
	if got := consumeAll(t, c, "changelog", 6); len(got[0]) != 6 {
		t.Fatalf("read %d records, want the 6 keyed ones", len(got[0]))
	}
}
