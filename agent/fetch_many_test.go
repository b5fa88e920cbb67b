package agent_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"maps"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
)

// fetchOf is a fetch request for partitions of one topic (by ID), each
// from its offset in from.
func fetchOf(id [16]byte, from map[int32]int64, maxBytes, partMax int32, maxWait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.MaxWaitMillis = int32(maxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = maxBytes
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = id
	for p, off := range from {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, off, partMax
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// batchRanges returns the first and last offset of each record batch in
// raw.
func batchRanges(t *testing.T, raw []byte) [][2]int64 {
	t.Helper()
	out, err := batchOffsets(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A fetch of many partitions whose data is cached is read by several
// goroutines at once, sharing the response's byte budget: every record
// is returned once, in order, however small the budget, and a response
// exceeds its maximum by at most one batch per goroutine.
func TestFetchOfManyPartitionsSharesItsBudget(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	a := c.addAgent(fastFlush)
	const partitions, perPartition = 1024, 3
	createTopic(t, c, "many", partitions, nil)
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(5*time.Millisecond))
	ctx := testCtx(t)
	value := bytes.Repeat([]byte("v"), 200)
	for i := range perPartition {
		var rs []*kgo.Record
		for p := range int32(partitions) {
			rs = append(rs, &kgo.Record{Topic: "many", Partition: p, Value: value})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	id := topicID(t, cl, "many")
	broker := c.client(kgo.SeedBrokers(plainAddr(a)))

	read := func(maxBytes int32) (got map[int32][][2]int64, fetches int) {
		next := map[int32]int64{}
		for p := range int32(partitions) {
			next[p] = 0
		}
		got = map[int32][][2]int64{}
		for len(next) > 0 {
			fetches++
			if fetches > 10*partitions {
				t.Fatalf("%d fetches and %d partitions not read to their end", fetches, len(next))
			}
			resp, err := fetchOf(id, next, maxBytes, 1<<20, 500*time.Millisecond).RequestWith(ctx, broker)
			if err != nil {
				t.Fatal(err)
			}
			total, batches := 0, 0
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if rp.ErrorCode != 0 {
						t.Fatalf("partition %d: error %d", rp.Partition, rp.ErrorCode)
					}
					total += len(rp.RecordBatches)
					rs := batchRanges(t, rp.RecordBatches)
					batches += len(rs)
					for _, r := range rs {
						got[rp.Partition] = append(got[rp.Partition], r)
						next[rp.Partition] = r[1] + 1
					}
					if next[rp.Partition] >= perPartition {
						delete(next, rp.Partition)
					}
				}
			}
			if batches == 0 {
				t.Fatalf("fetch %d returned nothing", fetches)
			}
			// Batches here are under 1 KiB: a response over its maximum by
			// more than one per goroutine took bytes it had no budget for.
			if over := total - int(maxBytes); over > runtime.GOMAXPROCS(0)<<10 {
				t.Fatalf("a response of %d bytes for a maximum of %d", total, maxBytes)
			}
		}
		return got, fetches
	}
	read(50 << 20) // once to fill the cache
	for _, maxBytes := range []int32{50 << 20, 64 << 10, 3 << 10} {
		got, fetches := read(maxBytes)
		for p := range int32(partitions) {
			want := int64(0)
			for _, r := range got[p] {
				if r[0] != want {
					t.Fatalf("maximum %d: partition %d read %v, want each offset from 0 once", maxBytes, p, got[p])
				}
				want = r[1] + 1
			}
			if want != perPartition {
				t.Fatalf("maximum %d: partition %d read to %d, want %d", maxBytes, p, want, perPartition)
			}
		}
		t.Logf("maximum %d: %d fetches", maxBytes, fetches)
	}
}

// A long poll waiting for data holds none of the agent's fetch memory:
// fetches of others meanwhile get the room they ask for, not the floor
// left by the waiting ones' reservations.
func TestLongPollHoldsNoFetchMemory(t *testing.T) {
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	a := c.addAgent(func(cfg *agent.Config) { fastFlush(cfg) })
	createTopic(t, c, "idle", 1, nil)
	createTopic(t, c, "full", 3, nil)
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	value := bytes.Repeat([]byte("x"), 300<<10)
	var rs []*kgo.Record
	for p := range int32(3) {
		for range 4 { // 1.2 MiB a partition: more than its 1 MiB maximum
			rs = append(rs, &kgo.Record{Topic: "full", Partition: p, Value: value})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	broker := c.client(kgo.SeedBrokers(plainAddr(a)))
	idle, full := topicID(t, cl, "idle"), topicID(t, cl, "full")

	// Two long polls at the end of an empty topic, each asking for the
	// most a response may hold; together they ask for more than the
	// agent's fetch memory.
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := fetchOf(idle, map[int32]int64{0: 0}, 55<<20, 55<<20, 3*time.Second).RequestWith(ctx, broker)
			done <- err
		}()
	}
	time.Sleep(300 * time.Millisecond) // both are waiting
	resp, err := fetchOf(full, map[int32]int64{0: 0, 1: 0, 2: 0}, 55<<20, 1<<20, 0).RequestWith(ctx, broker)
	if err != nil {
		t.Fatal(err)
	}
	for _, rp := range resp.Topics[0].Partitions {
		if rp.ErrorCode != 0 || len(rp.RecordBatches) == 0 {
			t.Fatalf("partition %d: error %d, %d bytes; want data for every partition while two long polls wait", rp.Partition, rp.ErrorCode, len(rp.RecordBatches))
		}
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// The agent's fetch memory is shared among the fetches holding some of it:
// while one response waits to be written (its client is not reading), a
// second fetch gets an equal share of the memory, not all that is free,
// so a third arriving meanwhile is not left a floor's worth.
func TestFetchMemoryIsSharedAmongFetches(t *testing.T) {
	skipRawInSecureMode(t)
	c, a, cl := twoLargePartitions(t, "shared")

	// A fetch of 16 MiB whose client reads only the response's size: the
	// rest of it waits to be written, holding its fetch memory.
	nc, err := net.Dial("tcp", plainAddr(a))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	held := kmsg.NewPtrFetchRequest()
	held.Version = 11
	// MinBytes: the response is whole, however the reads from the bucket
	// are paced.
	held.MaxWaitMillis, held.MinBytes, held.MaxBytes = 20_000, 15<<20, 16<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "shared"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 16 << 20
	rt.Partitions = append(rt.Partitions, rp)
	held.Topics = append(held.Topics, rt)
	sendRequest(t, nc, held)
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("reading the held response's size: %v", err)
	}
	if n := binary.BigEndian.Uint32(size[:]); n < 15<<20 {
		t.Fatalf("the held response is %d bytes, want about 16 MiB", n)
	}

	// A second fetch asks for everything (40 MiB): 48 MiB of the agent's
	// 64 MiB are free, but two fetches now hold memory, so it gets 32.
	fetchHalfShare(t, c, topicID(t, cl, "shared"))
}

// A fetch's share of the fetch memory counts the connections that read
// batches lately, not only the fetches holding memory now: the consumers
// of a group send their fetches together, and the first to arrive, finding
// the memory free, would otherwise take most of it while the others wait.
func TestFetchMemoryIsSharedAmongRecentReaders(t *testing.T) {
	c, _, cl := twoLargePartitions(t, "readers")
	ctx := testCtx(t)
	id := topicID(t, cl, "readers")
	// The topic is read into the cache first, by a connection closed
	// after (a closed one counts as no reader), so the fetches below are
	// served at once: read from the bucket, on a loaded machine the
	// second one's passes could outlast the second the first reader
	// counts for.
	readToEnd(t, c, id)

	// One client reads a little and holds nothing afterwards; its
	// connection stays open.
	reader := c.client()
	small, err := fetchOf(id, map[int32]int64{0: 0}, 1<<20, 1<<20, 5*time.Second).RequestWith(ctx, reader)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := responseBytes(t, small); got == 0 {
		t.Fatal("the first reader's fetch returned nothing")
	}

	// A second client asks for everything (40 MiB): all 64 MiB of the
	// fetch memory are free, but two connections read lately, so it gets
	// an equal share, 32 MiB.
	fetchHalfShare(t, c, id)
}

// A connection whose fetches find nothing to read (its consumer caught
// up, long-polling at the high watermark) no longer counts as a reader
// sharing the fetch memory.
func TestCaughtUpReadersDoNotShareFetchMemory(t *testing.T) {
	c, _, cl := twoLargePartitions(t, "caught-up")
	ctx := testCtx(t)
	id := topicID(t, cl, "caught-up")

	// Two clients read (the first all of the topic, so it is cached; the
	// second a little), then catch up: fetches at the high watermarks
	// find nothing.
	hw := map[int32]int64{}
	for i, from := range []map[int32]int64{{0: 0, 1: 0}, {0: 0}} {
		reader := c.client()
		next := maps.Clone(from)
		for {
			resp, err := fetchOf(id, next, 50<<20, 25<<20, 5*time.Second).RequestWith(ctx, reader)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := responseBytes(t, resp); got == 0 {
				t.Fatalf("reader %d: a fetch from %v returned nothing", i, next)
			}
			for _, sp := range resp.Topics[0].Partitions {
				hw[sp.Partition] = sp.HighWatermark
			}
			if i == 1 || next[0] >= hw[0] && next[1] >= hw[1] {
				break
			}
			for _, sp := range resp.Topics[0].Partitions {
				if last, ok := lastOffset(sp.RecordBatches); ok {
					next[sp.Partition] = last + 1
				}
			}
			if next[0] >= hw[0] && next[1] >= hw[1] {
				break
			}
		}
		tail, err := fetchOf(id, map[int32]int64{0: hw[0]}, 1<<20, 1<<20, 50*time.Millisecond).RequestWith(ctx, reader)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := responseBytes(t, tail); got != 0 {
			t.Fatalf("reader %d: a fetch at the high watermark %d returned %d bytes", i, hw[0], got)
		}
	}

	// A third client asks for everything (40 MiB, cached), and at least
	// 36, within less than the second a reader counts for: it reads
	// alone, so it gets them at once. Counting the two caught-up readers
	// gave it a third of the fetch memory (21 MiB).
	req := fetchOf(id, map[int32]int64{0: 0, 1: 0}, 50<<20, 25<<20, 800*time.Millisecond)
	req.MinBytes = 36 << 20
	resp, err := req.RequestWith(ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := responseBytes(t, resp); got < 36<<20 {
		t.Fatalf("the fetch returned %d bytes; want the topic's 40 MiB (the caught-up readers share nothing)", got)
	}
}

// readToEnd reads both partitions of twoLargePartitions' topic (id) to
// their high watermarks with a client of its own, closed after.
func readToEnd(t *testing.T, c *testCluster, id [16]byte) {
	t.Helper()
	cl := c.client()
	defer cl.Close()
	next := map[int32]int64{0: 0, 1: 0}
	for range 100 {
		resp, err := fetchOf(id, next, 50<<20, 25<<20, 5*time.Second).RequestWith(testCtx(t), cl)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, sp := range resp.Topics[0].Partitions {
			if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
				t.Fatalf("reading partition %d from %d: %v", sp.Partition, next[sp.Partition], err)
			}
			if last, ok := lastOffset(sp.RecordBatches); ok {
				next[sp.Partition] = last + 1
			}
			if next[sp.Partition] < sp.HighWatermark {
				done = false
			}
		}
		if done {
			return
		}
	}
	t.Fatalf("both partitions not read to their ends after 100 fetches (at %v)", next)
}

// fetchHalfShare fetches both partitions of twoLargePartitions' topic (id)
// from their start with a client of its own, asking for 50 MiB and at
// least 24 MiB, and fails unless the response holds about half the
// agent's fetch memory (32 MiB, one batch more at most).
func fetchHalfShare(t *testing.T, c *testCluster, id [16]byte) {
	t.Helper()
	req := fetchOf(id, map[int32]int64{0: 0, 1: 0}, 50<<20, 25<<20, 20*time.Second)
	req.MinBytes = 24 << 20
	resp, err := req.RequestWith(testCtx(t), c.client())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := responseBytes(t, resp)
	if got > 32<<20+(256<<10+1<<10) || got < 16<<20 {
		t.Fatalf("the fetch returned %d bytes; want about an equal share (32 MiB) of the fetch memory", got)
	}
}

// twoLargePartitions starts a cluster of one agent with a topic of two
// partitions holding 20 MiB of incompressible records each (batches as
// large as their records, 256 KiB), and returns the producing client.
func twoLargePartitions(t *testing.T, topic string) (*testCluster, *agent.Agent, *kgo.Client) {
	t.Helper()
	c := newTestCluster(t)
	a := c.addAgent(fastFlush)
	createTopic(t, c, topic, 2, nil)
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const perPartition = 20 << 20
	var rs []*kgo.Record
	for p := range int32(2) {
		for range perPartition / (256 << 10) {
			v := make([]byte, 256<<10)
			rand.Read(v)
			rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: v})
		}
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return c, a, cl
}

// sendRequest writes req on nc with a v1 request header (for requests of
// versions that are not flexible).
func sendRequest(t *testing.T, nc net.Conn, req kmsg.Request) {
	t.Helper()
	body := req.AppendTo(nil)
	frame := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+len(body)))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.GetVersion()))
	frame = binary.BigEndian.AppendUint32(frame, 1) // correlation ID
	frame = binary.BigEndian.AppendUint16(frame, 0xffff)
	frame = append(frame, body...)
	nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// A fetch with fetch.min.bytes above what one read pass brings in from
// the bucket (a partition's data spread over many objects, read a few at a
// time) reads on at once until it has them, rather than waiting for new
// records until its MaxWait.
func TestFetchMinBytesOverManyObjects(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(fastFlush)
	createTopic(t, c, "spread", 1, nil)
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	const objects, size = 12, 256 << 10
	for range objects { // one object each: the agent flushes between them
		v := make([]byte, size)
		rand.Read(v)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "spread", Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const maxWait = 30 * time.Second
	req := fetchOf(topicID(t, cl, "spread"), map[int32]int64{0: 0}, 8<<20, 8<<20, maxWait)
	req.MinBytes = objects * size * 3 / 4
	start := time.Now()
	resp, err := req.RequestWith(ctx, cl.Broker(int(a.NodeID())))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := responseBytes(t, resp)
	if got < int(req.MinBytes) {
		t.Fatalf("the fetch returned %d bytes, want at least its minimum %d", got, req.MinBytes)
	}
	if took := time.Since(start); took >= maxWait/2 {
		t.Fatalf("the fetch took %s: it waited for new records though it had more to read", took)
	}
}

// A fetch response whose partitions' batches come from several extents
// each is joined into a buffer of the agent's response pool, then encoded
// into another; both come back once the response is written, and later
// responses reuse them without one response's bytes showing in another's.
func TestJoinedResponsesGiveTheirBuffersBack(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c.registry = reg
	c.addAgent(func(cfg *agent.Config) {
		cfg.Writer.FlushInterval = 20 * time.Millisecond
		cfg.Writer.SegmentTargetBytes = 64 << 10
	})
	const parts, rounds, perRound = 8, 12, 32
	createTopic(t, c, "joined", parts, nil)
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testCtx(t)
	// Each round is flushed before the next: every partition's records
	// are in an extent of each round's objects.
	for range rounds {
		var rs []*kgo.Record
		for p := range int32(parts) {
			for range perRound {
				v := make([]byte, 1024)
				rand.Read(v)
				rs = append(rs, &kgo.Record{Topic: "joined", Partition: p, Value: v})
			}
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	id := topicID(t, cl, "joined")
	from := map[int32]int64{}
	for p := range int32(parts) {
		from[p] = 0
	}
	fetch := func() map[int32][]byte {
		req := fetchOf(id, from, 16<<20, 1<<20, 10*time.Second)
		req.MinBytes = parts * rounds * perRound * 1024 // everything, however many passes it takes
		resp, err := req.RequestWith(ctx, c.client())
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32][]byte{}
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					t.Fatalf("partition %d: error %d", sp.Partition, sp.ErrorCode)
				}
				offs, err := batchOffsets(sp.RecordBatches)
				if err != nil || len(offs) == 0 || offs[0][0] != 0 || offs[len(offs)-1][1] != rounds*perRound-1 {
					t.Fatalf("partition %d: batches %v (%v), want offsets 0 to %d", sp.Partition, offs, err, rounds*perRound-1)
				}
				for i := 1; i < len(offs); i++ {
					if offs[i][0] != offs[i-1][1]+1 {
						t.Fatalf("partition %d: batch at %d follows one ending at %d", sp.Partition, offs[i][0], offs[i-1][1])
					}
				}
				out[sp.Partition] = sp.RecordBatches
			}
		}
		return out
	}
	returned := func() (idle float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for metricValue(t, reg, "floe_agent_response_buffers_used_bytes") != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%.0f bytes of response buffers still in use after the responses were read", metricValue(t, reg, "floe_agent_response_buffers_used_bytes"))
			}
			time.Sleep(10 * time.Millisecond)
		}
		return metricValue(t, reg, "floe_agent_response_buffers_idle_bytes")
	}

	want := fetch()
	var size int
	for _, b := range want {
		size += len(b)
	}
	// The joined batches' buffer and the encoded response's are both kept.
	if idle := returned(); idle < 2*float64(size) {
		t.Fatalf("%.0f bytes of idle response buffers after a response of %d bytes of batches; want both its joined and its encoded buffer kept", idle, size)
	}
	// Responses at once, from the reused buffers: each must hold exactly
	// the batches of the first.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 3 {
				got := fetch()
				for p, b := range want {
					if !bytes.Equal(got[p], b) {
						t.Errorf("partition %d: a later response's batches differ from the first's", p)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	returned()
}
