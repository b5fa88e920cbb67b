package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/kafkatest"
)

// Requests a careless or hostile client sends: each is answered as Kafka
// answers it, and bounded in what it makes an agent hold.

// An OffsetCommit naming a partition twice is applied as Kafka applies it
// (the last one wins) and every entry is answered without error, instead
// of failing the group's write and sending a retrying client round a loop.
func TestOffsetCommitWithDuplicatePartitions(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(nil)
	ctx := testCtx(t)
	if _, err := c.admin().CreateTopic(ctx, 2, 1, nil, "dups"); err != nil {
		t.Fatal(err)
	}
	// A plain client: a group member of its own would make the group
	// non-empty, and a commit without a generation then UNKNOWN_MEMBER_ID.
	cl := c.client()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = "dup-commits"
	req.Generation = -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = "dups", topicID(t, cl, "dups")
	for _, po := range [][2]int64{{0, 5}, {1, 7}, {0, 9}} {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = int32(po[0]), po[1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt, rt) // and the whole topic twice
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			if sp.ErrorCode != 0 {
				t.Fatalf("partition %d answered error %d", sp.Partition, sp.ErrorCode)
			}
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest()
	fetch.Group = "dup-commits"
	fresp, err := fetch.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	for _, st := range fresp.Topics {
		for _, sp := range st.Partitions {
			got[sp.Partition] = sp.Offset
		}
	}
	if got[0] != 9 || got[1] != 7 {
		t.Fatalf("committed offsets %v, want partition 0 at 9 (the last named) and 1 at 7", got)
	}
}

// announce dials the agent and sends a 4-byte frame size announcing size
// bytes, and nothing more.
func announce(t *testing.T, addr string, size uint32) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], size)
	if _, err := nc.Write(b[:]); err != nil {
		t.Fatal(err)
	}
	return nc
}

// heapInUse is the test process's heap in use after a collection (the
// agent runs in it).
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Connections that announce 100 MiB frames and send nothing make the agent
// hold neither the 100 MiB each nor more than its request memory in
// reservations: bodies are read as they arrive, against the budget.
func TestAnnouncedFramesHoldNothing(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c.registry = reg
	a := c.addAgent(nil)
	before := heapInUse()
	for range 16 {
		announce(t, plainAddr(a), 100<<20)
	}
	// Two frames fit the default 256 MiB of request memory; the others
	// wait for it.
	deadline := time.Now().Add(30 * time.Second)
	for gaugeValue(t, reg, "floe_agent_request_bytes") < 200<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("request bytes %v, want the two frames that fit reserved", gaugeValue(t, reg, "floe_agent_request_bytes"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := gaugeValue(t, reg, "floe_agent_request_bytes"); got > 256<<20 {
		t.Fatalf("request bytes %v, past the 256 MiB budget", got)
	}
	if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
		t.Fatalf("the heap grew %d MiB for 16 announced frames with no bodies", grew>>20)
	}
	// The agent still serves others.
	if err := c.client().Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// Before SASL completes a connection may send only small requests
// (sasl.server.max.receive.size): a larger frame closes it before
// anything is read.
func TestUnauthenticatedFramesAreSmall(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(func(cfg *agent.Config) {
		cfg.Listeners = []agent.ListenerConfig{{Protocol: agent.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"}}
		cfg.Security.SASLMaxReceiveBytes = 64 << 10
	})
	nc := announce(t, a.ListenerAddr(agent.ProtocolSASLPlaintext), 1<<20)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("reading after a 1 MiB frame before authenticating: %v, want the connection closed", err)
	}
}

// A connection that sends nothing for connections.max.idle.ms is closed.
func TestIdleConnectionsClose(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(func(cfg *agent.Config) { cfg.ConnectionsMaxIdle = 200 * time.Millisecond })
	nc, err := net.Dial("tcp", plainAddr(a))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("an idle connection: %v, want it closed", err)
	}
}

// max.connections.per.ip closes connections beyond it; max.connections
// leaves them waiting to be accepted until one closes.
func TestConnectionLimits(t *testing.T) {
	c := newTestCluster(t)
	perIP := c.addAgent(func(cfg *agent.Config) { cfg.MaxConnectionsPerIP = 2 })
	var open []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", plainAddr(perIP))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		open = append(open, nc)
	}
	// An ApiVersions on the first two proves they were accepted (and
	// counted) before the third arrives.
	for _, nc := range open {
		apiVersions(t, nc)
	}
	third, err := net.Dial("tcp", plainAddr(perIP))
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := third.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a third connection from one address: %v, want it closed", err)
	}

	capped := c.addAgent(func(cfg *agent.Config) { cfg.MaxConnections = 1 })
	first, err := net.Dial("tcp", plainAddr(capped))
	if err != nil {
		t.Fatal(err)
	}
	apiVersions(t, first)
	second, err := net.Dial("tcp", plainAddr(capped)) // queued in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	// While the first is open the second is not served...
	sendAPIVersions(t, second)
	second.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a second connection beyond max.connections was answered (%v)", err)
	}
	// ...and it is once the first has gone.
	first.Close()
	readResponse(t, second)
}

// apiVersions sends an ApiVersions v0 on nc and reads its answer.
func apiVersions(t *testing.T, nc net.Conn) {
	t.Helper()
	sendAPIVersions(t, nc)
	readResponse(t, nc)
}

// sendAPIVersions writes an ApiVersions v0 request on nc.
func sendAPIVersions(t *testing.T, nc net.Conn) {
	t.Helper()
	sendRequest(t, nc, kmsg.NewPtrApiVersionsRequest())
}

// readResponse reads one response frame from nc.
func readResponse(t *testing.T, nc net.Conn) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(nc, size[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	if _, err := io.ReadFull(nc, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
}

// fill writes n records of size bytes to partition 0 of topic, with the
// batch size cl produces.
func fill(t *testing.T, cl *kgo.Client, topic string, n, size int) {
	t.Helper()
	var recs []*kgo.Record
	for range n {
		v := make([]byte, size)
		rand.Read(v) // incompressible, so batches are as large as their records
		recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: v})
	}
	if err := cl.ProduceSync(testCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// responseBytes is the record bytes of a fetch response and its number of
// partitions, failing t if a partition has an error.
func responseBytes(t *testing.T, resp *kmsg.FetchResponse) (bytes, parts int) {
	t.Helper()
	for _, st := range resp.Topics {
		for _, sp := range st.Partitions {
			if sp.ErrorCode != 0 {
				t.Fatalf("partition %d: error %d", sp.Partition, sp.ErrorCode)
			}
			bytes += len(sp.RecordBatches)
			parts++
		}
	}
	return bytes, parts
}

// One small Fetch naming a partition a thousand times is answered once
// for it, as Kafka answers, not with a thousand copies of its data; and
// the broker's fetch.max.bytes bounds a response whatever the client asks.
func TestFetchAmplification(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) { cfg.FetchMaxBytes, cfg.Writer.FlushInterval = 256<<10, 10*time.Millisecond })
	ctx := testCtx(t)
	created, err := c.admin().CreateTopic(ctx, 1, 1, nil, "amplified")
	if err != nil {
		t.Fatal(err)
	}
	cl := c.client(kgo.ProducerBatchMaxBytes(8<<10), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	fill(t, cl, "amplified", 256, 4<<10) // 1 MiB

	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxBytes = 1<<31 - 1
	req.MaxWaitMillis, req.MinBytes = 5000, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "amplified", created.ID // by name before v13, by ID from it
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 16 << 10
	for range 1000 {
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if n, parts := responseBytes(t, resp); parts != 1 || n == 0 || n > 24<<10 {
		t.Fatalf("2000 namings of one partition: %d partitions, %d bytes in the response; want 1 partition within its 16 KiB (and one 8 KiB batch)", parts, n)
	}

	// A client asking for everything gets at most fetch.max.bytes.
	req.Topics = req.Topics[:1]
	req.Topics[0].Partitions = req.Topics[0].Partitions[:1]
	req.Topics[0].Partitions[0].PartitionMaxBytes = 1<<31 - 1
	if resp, err = req.RequestWith(ctx, cl); err != nil {
		t.Fatal(err)
	}
	if n, _ := responseBytes(t, resp); n == 0 || n > 256<<10 {
		t.Fatalf("a fetch asking for 2 GiB got %d bytes; want some, within the agent's 256 KiB fetch.max.bytes", n)
	}

}

// Fetches naming topic IDs nobody created are answered UNKNOWN_TOPIC_ID
// without each one listing every topic in etcd: the agent lists them at
// most once a second, whatever the requests.
func TestUnknownTopicIDsAreCheap(t *testing.T) {
	c := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c.registry = reg
	c.addAgent(nil)
	ctx := testCtx(t)
	cl := c.client()
	start := time.Now()
	const requests = 200
	for range requests {
		req := kmsg.NewPtrFetchRequest()
		req.Version = 13
		req.ReplicaID = -1
		rt := kmsg.NewFetchRequestTopic()
		rand.Read(rt.TopicID[:])
		rt.Partitions = append(rt.Partitions, kmsg.NewFetchRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicID.Code {
			t.Fatalf("an unknown topic ID: error %d, want UNKNOWN_TOPIC_ID", code)
		}
	}
	scans := metricValue(t, reg, "floe_agent_topic_id_scans_total")
	if scans < 1 {
		t.Fatal("no listing of the topics counted: the view's misses never reach etcd?")
	}
	if allowed := float64(time.Since(start)/time.Second) + 2; scans > allowed {
		t.Fatalf("%v listings of every topic for %d requests in %v; at most one a second (%v)", scans, requests, time.Since(start), allowed)
	}
}

// joinNew joins group as a new member with protocol metadata of size
// bytes, as clients since KIP-394 do: a first JoinGroup gets a member ID
// (MEMBER_ID_REQUIRED), the second joins with it.
func joinNew(ctx context.Context, cl *kgo.Client, group string, size int) (*kmsg.JoinGroupResponse, error) {
	req := joinRequest(group, size)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
		return resp, err
	}
	req.MemberID = resp.MemberID
	return req.RequestWith(ctx, cl)
}

// joinRequest is a new member's JoinGroup with protocol metadata of size
// bytes.
func joinRequest(group string, size int) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = group
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = 10000
	req.ProtocolType = "consumer"
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name = "range"
	p.Metadata = make([]byte, size)
	req.Protocols = append(req.Protocols, p)
	return req
}

// group.max.size turns away members beyond it with GROUP_MAX_SIZE_REACHED,
// and so does a join whose protocol metadata would make the group's state
// outgrow what etcd stores in one request.
func TestGroupsAreBounded(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) {
		cfg.Groups.MaxSize = 2
		cfg.Groups.InitialRebalanceDelay = 10 * time.Millisecond
	})
	ctx := testCtx(t)
	cl := c.client()
	// Both members get their IDs before either joins with it: the group
	// waits for member IDs it handed out, so the two join one rebalance
	// however slowly the machine runs.
	var reqs []*kmsg.JoinGroupRequest
	for range 2 {
		req := joinRequest("small", 16)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("a first join: %v, error %d", err, resp.ErrorCode)
		}
		req.MemberID = resp.MemberID
		reqs = append(reqs, req)
	}
	var wg sync.WaitGroup
	for _, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := req.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
				t.Errorf("a member within group.max.size: %v, error %d", err, resp.ErrorCode)
			}
		}()
	}
	wg.Wait()
	resp, err := joinNew(ctx, cl, "small", 16)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("a third member of a group of at most 2: error %d, want GROUP_MAX_SIZE_REACHED", resp.ErrorCode)
	}
	resp, err = joinNew(ctx, cl, "heavy", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.GroupMaxSizeReached.Code {
		t.Fatalf("a member with 1 MiB of protocol metadata: error %d, want GROUP_MAX_SIZE_REACHED", resp.ErrorCode)
	}
}

// A produce request's body stays counted in the agent's request memory
// until the request is answered, whatever share of it was accepted: its
// accepted batches point into it, so it is held that long.
func TestProduceBodyCountedUntilAnswered(t *testing.T) {
	skipRawInSecureMode(t)
	c := newTestCluster(t)
	gated := &gatedBucket{Bucket: c.bucket, gate: make(chan struct{})}
	c.bucket = gated
	reg := prometheus.NewRegistry()
	c.registry = reg
	a := c.addAgent(func(cfg *agent.Config) { cfg.Writer.UploadTimeout = time.Minute })
	createTopic(t, c, "pinned", 1, nil)
	ctx := testCtx(t)

	// One small batch to a partition that exists, and 2 MiB of records
	// to one that does not (refused, but in the same body).
	big := make([]byte, 2<<20)
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 60000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "pinned"
	for _, p := range []struct {
		partition int32
		value     []byte
	}{{0, []byte("kept")}, {7, big}} {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p.partition
		rp.Records = kafkatest.RecordBatch(kafkatest.NoProducer, time.Now(), string(p.value))
		rt.Partitions = append(rt.Partitions, rp)
	}
	cl := c.clientAt(plainAddr(a), kgo.RequestTimeoutOverhead(time.Minute))
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "pinned")
	if err != nil {
		t.Fatal(err)
	}
	rt.TopicID = topics["pinned"].ID // produce v13 names topics by ID
	req.Topics = append(req.Topics, rt)
	done := make(chan error, 1)
	go func() {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			for _, rp := range resp.Topics[0].Partitions {
				if rp.Partition == 0 && rp.ErrorCode != 0 {
					err = kerr.ErrorForCode(rp.ErrorCode)
				}
			}
		}
		done <- err
	}()
	// The PUT of the kept batch waits at the gate: the request is not
	// answered, and its whole body is held.
	for metricValue(t, reg, "floe_agent_request_bytes") < 2<<20 {
		select {
		case err := <-done:
			t.Fatalf("the produce was answered (%v) before its flush was written", err)
		case <-ctx.Done():
			t.Fatalf("request memory reached %v bytes, want the 2 MiB body counted while the produce waits", metricValue(t, reg, "floe_agent_request_bytes"))
		case <-time.After(10 * time.Millisecond):
		}
	}
	close(gated.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for metricValue(t, reg, "floe_agent_request_bytes") >= 2<<20 {
		select {
		case <-ctx.Done():
			t.Fatal("the body stayed counted after the produce was answered")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
