package compactor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/compactor"
	"github.com/floe-io/floe/internal/kafkatest"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// env is a cluster as in production: agents and compactors sharing an etcd
// prefix and a bucket (the localstack MinIO when configured, else a
// directory).
type env struct {
	t      *testing.T
	store  *metadata.Store
	bucket segments.Bucket
	agents []*agent.Agent
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, bucket: testenv.Bucket(t)}
}

// agentDefaults is an agent on a free port with production defaults.
func agentDefaults() agent.Config {
	return agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second, EtcdMaxTxnOps: 2048}
}

// addAgent starts an agent that flushes every 20ms, so tests run quickly.
func (e *env) addAgent() *agent.Agent {
	e.t.Helper()
	cfg := agentDefaults()
	cfg.Writer.FlushInterval = 20 * time.Millisecond
	return e.addAgentWith(cfg)
}

func (e *env) addAgentWith(cfg agent.Config) *agent.Agent {
	e.t.Helper()
	a, err := agent.New(cfg, agent.Deps{Store: e.store, Bucket: e.bucket, Log: testenv.Logger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { a.Shutdown(context.Background()) })
	e.agents = append(e.agents, a)
	return a
}

func (e *env) client(opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	var seeds []string
	for _, a := range e.agents {
		seeds = append(seeds, a.Addr())
	}
	return e.clientAt(seeds, opts...)
}

func (e *env) clientAt(seeds []string, opts ...kgo.Opt) *kgo.Client {
	e.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(15 * time.Second), kgo.MetadataMinAge(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(cl.Close)
	return cl
}

// compactor starts a compactor running until the test ends.
func (e *env) compactor(cfg compactor.Config) *compactor.Compactor {
	e.t.Helper()
	c := e.newCompactor(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
	return c
}

func (e *env) newCompactor(cfg compactor.Config) *compactor.Compactor {
	e.t.Helper()
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 2 * time.Second
	}
	if cfg.EtcdMaxTxnOps == 0 {
		cfg.EtcdMaxTxnOps = 2048 // both test etcds allow it
	}
	c, err := compactor.New(cfg, compactor.Deps{Store: e.store, Bucket: e.bucket, Log: testenv.Logger(e.t)})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) createTopic(name string, partitions int32, configs map[string]string) metadata.Topic {
	e.t.Helper()
	tp, err := e.store.CreateTopic(ctx(e.t), metadata.TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: 1, Configs: configs})
	if err != nil {
		e.t.Fatal(err)
	}
	return tp
}

// objects lists the segment objects in the bucket by kind.
func (e *env) objects() map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	if err := e.bucket.List(ctx(e.t), "", func(o segments.ObjectInfo) error {
		_, kind, ok := segments.ParseObjectKey(o.Key)
		if !ok {
			kind = "other"
		}
		out[kind] = append(out[kind], o.Key)
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// index returns partition p's index entries: its extents in its shard's
// log.
func (e *env) index(tp metadata.Topic, p int32) []metadata.IndexEntry {
	e.t.Helper()
	idx, err := e.store.PartitionEntries(ctx(e.t), tp, p, 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return idx
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond every 50ms until it holds or within passes; it
// returns how long that took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

type acked struct {
	key, value []byte
	headers    []kgo.RecordHeader
	ts         time.Time
	offset     int64
}

// produce writes rounds produce requests, each of perRound records spread
// over the topic's partitions and each committed in its own flush (the
// call waits for the acknowledgement), and returns what was acknowledged
// per partition.
func produce(t *testing.T, cl *kgo.Client, topic string, partitions int32, rounds, perRound int, ts func(i int) time.Time) map[int32][]acked {
	t.Helper()
	out := map[int32][]acked{}
	i := 0
	for range rounds {
		recs := make([]*kgo.Record, perRound)
		for j := range recs {
			val := make([]byte, 20+i%150)
			rand.Read(val)
			recs[j] = &kgo.Record{
				Topic: topic, Partition: int32(i) % partitions,
				Key: []byte(fmt.Sprintf("k%d", i)), Value: val, Timestamp: ts(i),
			}
			if i%5 == 0 {
				recs[j].Headers = []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}
			}
			i++
		}
		if err := cl.ProduceSync(ctx(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out[r.Partition] = append(out[r.Partition], acked{key: r.Key, value: r.Value, headers: r.Headers, ts: r.Timestamp, offset: r.Offset})
		}
	}
	for p := range out {
		sort.Slice(out[p], func(a, b int) bool { return out[p][a].offset < out[p][b].offset })
	}
	return out
}

func producer(e *env) *kgo.Client {
	return e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.RequiredAcks(kgo.AllISRAcks()))
}

// consume reads topic from the earliest offset until it has want records
// (per poll, after pause) and returns them by partition.
func consume(ctx context.Context, cl *kgo.Client, want int, pause time.Duration) (map[int32][]*kgo.Record, error) {
	got := map[int32][]*kgo.Record{}
	n := 0
	for n < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return got, fmt.Errorf("read %d of %d records: %w", n, want, err)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = fmt.Errorf("fetching %s/%d: %w", topic, p, err)
		})
		if ferr != nil {
			return got, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
		time.Sleep(pause)
	}
	return got, nil
}

// same compares what was read with what was acknowledged, byte for byte.
func same(want map[int32][]acked, got map[int32][]*kgo.Record) error {
	for p, w := range want {
		g := got[p]
		if len(g) != len(w) {
			return fmt.Errorf("partition %d: read %d records, acknowledged %d", p, len(g), len(w))
		}
		for i := range w {
			a, r := w[i], g[i]
			if r.Offset != a.offset || !bytes.Equal(r.Key, a.key) || !bytes.Equal(r.Value, a.value) || !r.Timestamp.Equal(a.ts) || len(r.Headers) != len(a.headers) {
				return fmt.Errorf("partition %d offset %d: read key %q at %d, acknowledged key %q at %d", p, r.Offset, r.Key, r.Offset, a.key, a.offset)
			}
			for j := range a.headers {
				if r.Headers[j].Key != a.headers[j].Key || !bytes.Equal(r.Headers[j].Value, a.headers[j].Value) {
					return fmt.Errorf("partition %d offset %d: headers differ", p, r.Offset)
				}
			}
		}
	}
	return nil
}

// fetchAt sends one Fetch. kgo sends it at the highest version both sides
// speak, where topics are named by ID, so the ID is set too.
func fetchAt(t *testing.T, cl *kgo.Client, tp metadata.Topic, partition int32, offset int64) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp, err := kafkatest.FetchRequest(tp.Name, tp.ID, partition, offset, 0).RequestWith(ctx(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[0].Partitions[0]
}

// A topic with retention.ms=2000 loses its records within two check
// intervals of their expiry, and its objects leave the bucket once past
// the grace; the log start moves, fetches below it are out of range and
// consumers from the earliest offset read only what is kept.
func TestRetentionByTime(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	tp := e.createTopic("expiring", 2, map[string]string{"retention.ms": "2000"})
	forever := e.createTopic("forever", 1, map[string]string{"retention.ms": "-1"})
	prod := producer(e)
	// Old data: timestamps now. A topic kept forever shares the flushes.
	old := produce(t, prod, "expiring", 2, 20, 10, func(int) time.Time { return time.Now() })
	produce(t, prod, "forever", 1, 3, 4, func(int) time.Time { return time.Now().Add(-48 * time.Hour) })
	expiry := time.Now().Add(2 * time.Second) // the newest record expires then
	ends := map[int32]int64{}
	for p, recs := range old {
		ends[p] = recs[len(recs)-1].offset + 1
	}
	// The kept topic's objects: three, unless a round's records reached
	// the agent in two requests that straddled a flush.
	keptObjects := map[string]bool{}
	for _, en := range e.index(forever, 0) {
		keptObjects[en.Object] = true
	}
	before := e.objects()[segments.KindFlush]
	if len(before) < 20 {
		t.Fatalf("%d flush objects after 20 flushes", len(before))
	}

	// What the compactor controls is how many passes each step takes, not
	// how long a pass takes on a busy machine: the records go at the first
	// pass that starts after they expire (or the one after, if a pass was
	// under way), and their objects two passes after the grace ends (one
	// dooms them, the next deletes them; a third may have been under way).
	const interval, grace = time.Second, 3 * time.Second
	c := e.compactor(compactor.Config{RetentionCheckInterval: interval, GCGrace: grace, MergeSettle: time.Hour})
	adm := kadm.NewClient(prod)
	time.Sleep(time.Until(expiry))
	atExpiry, _ := c.Stats()
	var removedAt int
	eventually(t, time.Minute, "the old records expire", func() bool {
		removedAt, _ = c.Stats()
		starts, err := adm.ListStartOffsets(ctx(t), "expiring")
		if err != nil {
			t.Fatal(err)
		}
		for p, end := range ends {
			if o, _ := starts.Lookup("expiring", p); o.Offset != end {
				return false
			}
		}
		return true
	})
	if n := removedAt - atExpiry; n > 2 {
		t.Fatalf("records removed %d passes after they expired, want at most 2", n)
	}
	for p := range int32(2) {
		if idx := e.index(tp, p); len(idx) != 0 {
			t.Fatalf("partition %d keeps %d index entries", p, len(idx))
		}
	}
	_, last := c.Stats()
	t.Logf("removed %v after expiry; last pass %+v", time.Since(expiry).Round(time.Millisecond), last)

	// The objects holding only expired data go once past the grace; the
	// ones shared with the kept topic stay.
	time.Sleep(grace)
	graced, _ := c.Stats()
	var deletedAt int
	waited := eventually(t, time.Minute, "the expired objects are deleted", func() bool {
		deletedAt, _ = c.Stats()
		return len(e.objects()[segments.KindFlush]) <= len(keptObjects)
	})
	if n := deletedAt - graced; n > 3 {
		t.Fatalf("objects deleted %d passes after the grace ended, want at most 3", n)
	}
	t.Logf("objects deleted %v after the grace ended (%d passes)", waited.Round(time.Millisecond), deletedAt-graced)
	if left := e.objects()[segments.KindFlush]; len(left) != len(keptObjects) {
		t.Fatalf("%d flush objects left; the %d holding the kept topic must stay", len(left), len(keptObjects))
	} else {
		for _, o := range left {
			if !keptObjects[o] {
				t.Fatalf("%s is left; it holds none of the kept topic", o)
			}
		}
	}
	if got, err := consume(ctx(t), e.client(kgo.ConsumeTopics("forever"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 12, 0); err != nil || len(got[0]) != 12 {
		t.Fatalf("kept topic: %v, %d records", err, len(got[0]))
	}

	// New data, stamped in the future so it outlives the test.
	kept := produce(t, prod, "expiring", 2, 3, 10, func(int) time.Time { return time.Now().Add(time.Hour) })
	starts, _ := adm.ListStartOffsets(ctx(t), "expiring")
	for p, end := range ends {
		if o, _ := starts.Lookup("expiring", p); o.Offset != end {
			t.Fatalf("partition %d: earliest %d, want %d", p, o.Offset, end)
		}
		if r := fetchAt(t, prod, tp, p, end-1); !errors.Is(kerr.ErrorForCode(r.ErrorCode), kerr.OffsetOutOfRange) || r.LogStartOffset != end {
			t.Fatalf("partition %d: fetch below the start: %v, log start %d", p, kerr.ErrorForCode(r.ErrorCode), r.LogStartOffset)
		}
	}
	cons := e.client(kgo.ConsumeTopics("expiring"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	got, err := consume(ctx(t), cons, 30, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := same(kept, got); err != nil {
		t.Fatal(err)
	}
}

// retention.bytes holds a partition to its cap while data keeps coming.
func TestRetentionByBytes(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	const limit = 16 << 10
	tp := e.createTopic("capped", 1, map[string]string{"retention.bytes": fmt.Sprint(limit)})
	prod := producer(e)
	c := e.compactor(compactor.Config{RetentionCheckInterval: 200 * time.Millisecond, GCGrace: time.Second, MergeSettle: time.Hour})
	var total int64
	for round := range 5 {
		produce(t, prod, "capped", 1, 10, 10, func(int) time.Time { return time.Now() })
		passes, _ := c.Stats()
		eventually(t, 10*time.Second, "a pass after producing", func() bool { n, _ := c.Stats(); return n >= passes+2 })
		idx := e.index(tp, 0)
		var held int64
		for _, en := range idx {
			held += en.Length
		}
		st, _ := e.store.GetPartitionState(ctx(t), tp, 0)
		t.Logf("round %d: %d entries, %d bytes, offsets %d-%d", round, len(idx), held, st.Start, st.Next)
		if held > limit || len(idx) == 0 {
			t.Fatalf("round %d: the partition holds %d bytes in %d entries; the cap is %d", round, held, len(idx), limit)
		}
		if idx[0].First > st.Start || idx[len(idx)-1].Last != st.Next-1 {
			t.Fatalf("round %d: entries %d-%d, log %d-%d", round, idx[0].First, idx[len(idx)-1].Last, st.Start, st.Next)
		}
		total = st.Next
	}
	// Consumers from the earliest offset read the kept suffix, no more.
	starts, _ := kadm.NewClient(prod).ListStartOffsets(ctx(t), "capped")
	o, _ := starts.Lookup("capped", 0)
	if o.Offset <= 0 {
		t.Fatalf("earliest %d: nothing was removed", o.Offset)
	}
	got, err := consume(ctx(t), e.client(kgo.ConsumeTopics("capped"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), int(total-o.Offset), 0)
	if err != nil {
		t.Fatal(err)
	}
	if recs := got[0]; recs[0].Offset != o.Offset || recs[len(recs)-1].Offset != total-1 {
		t.Fatalf("read %d-%d, log %d-%d", recs[0].Offset, recs[len(recs)-1].Offset, o.Offset, total)
	}
}

// A merge of 100 small objects keeps every record readable with the same
// offsets, byte for byte, while consumers read through it, the merge
// swaps the log entries and the old objects are deleted under them. Both
// partitions' runs share one merged object; each shard's latest entry
// stays as it was.
func TestMergeWhileConsuming(t *testing.T) {
	e := newEnv(t)
	a := e.addAgent()
	tp := e.createTopic("merging", 2, nil)
	prod := producer(e)
	want := produce(t, prod, "merging", 2, 100, 10, func(i int) time.Time { return time.Now().Add(time.Duration(i) * time.Millisecond) })
	// Each round is acknowledged before the next is sent, so each is in
	// its own flush; a round whose records reach the agent in two
	// requests may straddle a flush and make two.
	if n := len(e.objects()[segments.KindFlush]); n < 100 {
		t.Fatalf("%d flush objects, want at least 100", n)
	}
	batches := map[int32]int32{}
	for p := range int32(2) {
		idx := e.index(tp, p)
		if len(idx) < 100 {
			t.Fatalf("partition %d: %d index entries, want at least 100", p, len(idx))
		}
		for _, en := range idx {
			batches[p] += en.Batches
		}
	}

	// Consumers read one batch per fetch, slowly, before, during and after
	// the merge and the collection of the old objects.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		reads int
		errs  []error
	)
	stop := make(chan struct{})
	reader := func(pause time.Duration) {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumeTopics("merging"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(1000), kgo.FetchMaxPartitionBytes(1),
				kgo.FetchMaxWait(100*time.Millisecond), kgo.MetadataMinAge(10*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			got, err := consume(rctx, cl, 1000, pause)
			cancel()
			cl.Close()
			if err == nil {
				err = same(want, got)
			}
			mu.Lock()
			reads++
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}
	}
	wg.Add(2)
	go reader(0)
	go reader(15 * time.Millisecond)
	// Another agent loads its index window now and caches one extent per
	// partition; it is asked for the rest only after the old objects are
	// gone, so it reads through stale index entries naming deleted objects.
	stale := e.addAgent()
	staleCl := e.clientAt([]string{stale.Addr()})
	for p := range int32(2) {
		if r := fetchAt(t, staleCl, tp, p, 0); r.ErrorCode != 0 || len(r.RecordBatches) == 0 {
			t.Fatalf("partition %d: first fetch: %v", p, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	time.Sleep(500 * time.Millisecond) // readers are under way

	c := e.compactor(compactor.Config{RetentionCheckInterval: 300 * time.Millisecond, GCGrace: time.Second, MergeSettle: time.Millisecond})
	eventually(t, 30*time.Second, "the merge", func() bool {
		return len(e.index(tp, 0)) == 2 && len(e.index(tp, 1)) == 2
	})
	// What is left: the merged object, and the flush objects of the
	// shards' latest entries (one, or two when the partitions' last
	// batches were flushed apart).
	eventually(t, 30*time.Second, "the old objects are deleted", func() bool {
		objs := e.objects()
		latest := map[string]bool{}
		for p := range int32(2) {
			if idx := e.index(tp, p); len(idx) > 0 {
				latest[idx[len(idx)-1].Object] = true
			}
		}
		for _, o := range objs[segments.KindFlush] {
			if !latest[o] {
				return false
			}
		}
		return len(objs[segments.KindMerged]) == 1
	})
	time.Sleep(time.Second) // and read some more
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d reads went wrong; first: %v", len(errs), reads, errs[0])
	}
	if reads < 3 {
		t.Fatalf("only %d reads completed", reads)
	}
	for p := range int32(2) {
		idx := e.index(tp, p)
		m, latest := idx[0], idx[1]
		if m.First != 0 || m.Last+1 != latest.First || latest.Last != want[p][len(want[p])-1].offset ||
			m.Batches+latest.Batches != batches[p] || len(m.Skip) != 0 {
			t.Fatalf("partition %d merged entry %+v, latest %+v", p, m, latest)
		}
		if _, kind, _ := segments.ParseObjectKey(m.Object); kind != segments.KindMerged {
			t.Fatalf("partition %d: merged entry in %s", p, m.Object)
		}
	}
	// The agent with the stale index window reads everything.
	got, err := consume(ctx(t), e.clientAt([]string{stale.Addr()}, kgo.ConsumeTopics("merging"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 1000, 0)
	if err == nil {
		err = same(want, got)
	}
	if err != nil {
		t.Fatalf("through a stale index window: %v", err)
	}
	// A fresh agent (no cache, no index window) reads the merged objects.
	b := e.addAgent()
	got, err = consume(ctx(t), e.clientAt([]string{b.Addr()}, kgo.ConsumeTopics("merging"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 1000, 0)
	if err == nil {
		err = same(want, got)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, last := c.Stats()
	t.Logf("%d reads during the merge; last pass %+v", reads, last)
}

// An object written by an agent that crashed before committing it is
// referenced by nothing: the collector removes it once past the grace,
// never before, and never touches keys that are not segment objects.
func TestOrphanCollectedAfterGrace(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	tp := e.createTopic("live", 1, nil)
	produce(t, producer(e), "live", 1, 2, 5, func(int) time.Time { return time.Now() })
	referenced := e.objects()[segments.KindFlush]

	b := segments.NewBuilder(segments.CodecZstd)
	batch, err := segments.ParseBatch(orphanBatch())
	if err != nil {
		t.Fatal(err)
	}
	b.Append(segments.PartitionKey{TopicID: tp.ID, Partition: 0}, batch)
	obj, _, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	// The grace runs from the object's creation: its key's time, which is
	// before the PUT (a slow PUT must not look like an early delete).
	named := time.Now()
	orphan := segments.NewObjectKey(named, segments.KindFlush)
	if err := e.bucket.Put(ctx(t), orphan, obj); err != nil {
		t.Fatal(err)
	}
	if err := e.bucket.Put(ctx(t), "notes/readme.txt", []byte("not a segment")); err != nil {
		t.Fatal(err)
	}

	const grace = 4 * time.Second
	c := e.compactor(compactor.Config{RetentionCheckInterval: 250 * time.Millisecond, GCGrace: grace})
	has := func(key string) bool {
		for _, keys := range e.objects() {
			for _, k := range keys {
				if k == key {
					return true
				}
			}
		}
		return false
	}
	// Young: several passes leave it alone.
	eventually(t, 10*time.Second, "three passes", func() bool { n, _ := c.Stats(); return n >= 3 })
	if !has(orphan) {
		t.Fatalf("a young orphan was deleted %v after it was named; the grace is %v", time.Since(named), grace)
	}
	if _, last := c.Stats(); last.Unreferenced != 1 || last.Deleted != 0 {
		t.Fatalf("last pass %+v", last)
	}
	eventually(t, grace+5*time.Second, "the orphan is deleted", func() bool { return !has(orphan) })
	if age := time.Since(named); age < grace {
		t.Fatalf("orphan deleted at %v, before its grace of %v", age, grace)
	}
	for _, k := range referenced {
		if !has(k) {
			t.Fatalf("referenced object %s was deleted", k)
		}
	}
	if !has("notes/readme.txt") {
		t.Fatal("a key that is not a segment object was deleted")
	}
}

func orphanBatch() []byte {
	return kafkatest.RecordBatch(kafkatest.NoProducer, time.Now(), "never committed")
}

// Two compactors: one acts at a time; when the leader's lease is lost,
// the other takes over and the deposed one stops.
func TestOneCompactorActs(t *testing.T) {
	e := newEnv(t)
	cfg := compactor.Config{RetentionCheckInterval: 100 * time.Millisecond, GCGrace: time.Minute, LeaseTTL: 2 * time.Second}
	cfg.ID = "one"
	c1 := e.compactor(cfg)
	cfg.ID = "two"
	c2 := e.compactor(cfg)
	leaders := func() []*compactor.Compactor {
		var out []*compactor.Compactor
		for _, c := range []*compactor.Compactor{c1, c2} {
			if c.Leading() {
				out = append(out, c)
			}
		}
		return out
	}
	eventually(t, 10*time.Second, "a leader", func() bool { return len(leaders()) == 1 })
	leader := leaders()[0]
	other := c2
	if leader == c2 {
		other = c1
	}
	for range 20 {
		if l := leaders(); len(l) != 1 || l[0] != leader {
			t.Fatalf("%d leaders", len(l))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n, _ := other.Stats(); n != 0 {
		t.Fatalf("the follower ran %d passes", n)
	}
	n0, _ := leader.Stats()
	if n0 == 0 {
		t.Fatal("the leader ran no pass")
	}

	// The leader's lease is revoked (as when it lapses): the other takes
	// over, the deposed one stops acting.
	cli := e.store.Client()
	resp, err := cli.Get(ctx(t), e.store.Root()+"compactor/leader/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("leader key: %v", err)
	}
	if _, err := cli.Revoke(ctx(t), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the other compactor takes over", func() bool {
		l := leaders()
		return len(l) == 1 && l[0] == other
	})
	n1, _ := leader.Stats()
	time.Sleep(500 * time.Millisecond)
	if n2, _ := leader.Stats(); n2 > n1+1 {
		t.Fatalf("the deposed compactor ran %d more passes", n2-n1)
	}
	if n, _ := other.Stats(); n == 0 {
		t.Fatal("the new leader ran no pass")
	}
	// The deposed one campaigns again and waits.
	if leader.Leading() {
		t.Fatal("the deposed compactor still leads")
	}
}

// RunOnce acts as leader for one pass, and refuses while another
// compactor runs.
func TestRunOnce(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	tp := e.createTopic("once", 1, map[string]string{"retention.ms": "1"})
	produce(t, producer(e), "once", 1, 3, 3, func(int) time.Time { return time.Now().Add(-time.Minute) })
	once := e.newCompactor(compactor.Config{GCGrace: time.Minute})
	stats, err := once.RunOnce(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// Three extents expired; two entries went with them, the latest
	// (which holds the high watermark) is kept without its extent.
	if stats.RetentionExtents != 3 || stats.RetentionEntries != 2 || stats.Partitions != 1 || stats.Behind != 1 {
		t.Fatalf("pass %+v", stats)
	}
	if once.Leading() {
		t.Fatal("still leading after RunOnce")
	}
	if idx := e.index(tp, 0); len(idx) != 0 {
		t.Fatalf("%d entries left", len(idx))
	}

	running := e.compactor(compactor.Config{RetentionCheckInterval: time.Hour, GCGrace: time.Minute, ID: "daemon"})
	eventually(t, 10*time.Second, "the daemon leads", running.Leading)
	_, err = once.RunOnce(ctx(t))
	if !errors.Is(err, compactor.ErrLeaderElsewhere) || !strings.Contains(err.Error(), "daemon") {
		t.Fatalf("RunOnce beside a running compactor: %v", err)
	}
}

// Entries left below a DeleteRecords start, and the objects of a deleted
// topic, are collected.
func TestDeleteRecordsAndDeletedTopicsAreCollected(t *testing.T) {
	e := newEnv(t)
	e.addAgent()
	tp := e.createTopic("trimmed", 1, nil)
	e.createTopic("doomed", 1, nil)
	// Each round's four records in one batch, so one flush object each
	// (without a linger the client may send the first record alone).
	prod := e.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(50*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
	produce(t, prod, "trimmed", 1, 10, 4, func(int) time.Time { return time.Now() })
	produce(t, prod, "doomed", 1, 5, 4, func(int) time.Time { return time.Now() })
	adm := kadm.NewClient(prod)
	rs, err := adm.DeleteRecords(ctx(t), kadm.OffsetsList{{Topic: "trimmed", Partition: 0, At: 22}}.Offsets())
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.Lookup("trimmed", 0); r.Err != nil || r.LowWatermark != 22 {
		t.Fatalf("delete records: %+v", r)
	}
	if _, err := e.store.DeleteTopic(ctx(t), "doomed"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.objects()[segments.KindFlush]); n != 15 {
		t.Fatalf("%d objects", n)
	}
	e.compactor(compactor.Config{RetentionCheckInterval: 200 * time.Millisecond, GCGrace: 2 * time.Second, MergeSettle: time.Hour})
	// The bounds are for a machine running every other suite at once:
	// passes come every 200ms and the grace is 2s.
	eventually(t, time.Minute, "entries below the start go", func() bool {
		idx := e.index(tp, 0)
		return len(idx) == 5 && idx[0].First == 20
	})
	// 5 entries of "trimmed" below its start and all 5 of "doomed".
	eventually(t, time.Minute, "their objects go", func() bool { return len(e.objects()[segments.KindFlush]) == 5 })
	got, err := consume(ctx(t), e.client(kgo.ConsumeTopics("trimmed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), 18, 0)
	if err != nil {
		t.Fatal(err)
	}
	if recs := got[0]; len(recs) != 18 || recs[0].Offset != 22 {
		t.Fatalf("read %d records from %d", len(recs), recs[0].Offset)
	}
}

// Run, stopped through its context, leaves no goroutine behind: not its
// own, not the election session's.
func TestRunLeavesNoGoroutines(t *testing.T) {
	endpoints := testenv.EtcdEndpoints(t)
	bucket, err := segments.OpenBucket(context.Background(), t.TempDir(), segments.BucketOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	before := goleak.IgnoreCurrent()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	store, err := metadata.NewStore(cli, testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := compactor.New(compactor.Config{RetentionCheckInterval: 50 * time.Millisecond, LeaseTTL: 2 * time.Second},
		compactor.Deps{Store: store, Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(rctx) }()
	eventually(t, 10*time.Second, "two passes", func() bool { n, _ := c.Stats(); return n >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Leading() {
		t.Fatal("still leading after Run returned")
	}
	cli.Close()
	goleak.VerifyNone(t, before)
}

// An agent that PUT an object and then stalled past the grace (etcd down,
// say) must not commit it after the collector chose to delete it: the
// collector marks the object first, the late commit fails (its producers
// retry), and only a later pass deletes the object. Nothing acknowledged
// ever points at a deleted object.
func TestLateCommitOfCollectedObjectFails(t *testing.T) {
	e := newEnv(t)
	tp := e.createTopic("late", 1, nil)
	b := segments.NewBuilder(segments.CodecNone)
	batch, err := segments.ParseBatch(orphanBatch())
	if err != nil {
		t.Fatal(err)
	}
	key := segments.PartitionKey{TopicID: tp.ID, Partition: 0}
	b.Append(key, batch)
	obj, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	late := segments.NewObjectKey(time.Now().Add(-time.Hour), segments.KindFlush)
	if err := e.bucket.Put(ctx(t), late, obj); err != nil {
		t.Fatal(err)
	}
	// Passes until one marks the object, once it is past the grace by its
	// LastModified too: old and unreferenced. None deletes it yet.
	once := e.newCompactor(compactor.Config{GCGrace: time.Second})
	var st compactor.PassStats
	eventually(t, time.Minute, "a pass marks the object", func() bool {
		if st, err = once.RunOnce(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if st.Deleted != 0 {
			t.Fatalf("deleted %d objects at the pass that marked them", st.Deleted)
		}
		marks, err := e.store.DoomMarks(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		return len(marks) == 1 && marks[0].Object == late
	})
	// The stalled agent's commit now fails, and writes nothing.
	c := e.store.NewCommitter(metadata.CommitConfig{})
	res, err := c.Commit(ctx(t), []metadata.Append{{
		Topic: tp, Partition: 0, Object: late, Offset: extents[0].Offset, Length: extents[0].Length,
		Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(res[0].Batches[0].Err, metadata.ErrObjectDoomed) {
		t.Fatalf("late commit: %+v", res[0].Batches[0])
	}
	if idx := e.index(tp, 0); len(idx) != 0 {
		t.Fatalf("%d index entries after a refused commit", len(idx))
	}
	// The next pass deletes it.
	if st, err = once.RunOnce(ctx(t)); err != nil || st.Deleted != 1 {
		t.Fatalf("second pass: %v %+v", err, st)
	}
	if marks, _ := e.store.DoomMarks(ctx(t)); len(marks) != 0 {
		t.Fatalf("%d doom marks left after the delete", len(marks))
	}
}

// A commit delayed past garbage collection (an agent paused between its
// PUT and its commit for longer than the grace, while the collector dooms
// and deletes the object and its doom mark) fails, instead of
// acknowledging records whose object is gone.
func TestCommitDelayedPastCollectionFails(t *testing.T) {
	e := newEnv(t)
	tp := e.createTopic("late", 1, nil)
	raw := kafkatest.RecordBatch(kafkatest.NoProducer, time.Now(), "late record")
	batch, err := segments.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	b := segments.NewBuilder(segments.CodecZstd)
	b.Append(segments.PartitionKey{TopicID: tp.ID}, batch)
	obj, extents, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	key := segments.NewObjectKey(time.Now(), segments.KindFlush)
	if err := e.bucket.Put(ctx(t), key, obj); err != nil {
		t.Fatal(err)
	}
	// The agent stalls; the collector finds the object unreferenced past
	// its grace, dooms it, and deletes it with its mark.
	e.compactor(compactor.Config{RetentionCheckInterval: 100 * time.Millisecond, GCGrace: time.Second})
	eventually(t, time.Minute, "the unreferenced object is deleted", func() bool {
		// A GET, not a listing: it sees the object until it is gone.
		rc, err := e.bucket.GetRange(ctx(t), key, 0, 1)
		if err == nil {
			rc.Close()
		}
		return errors.Is(err, segments.ErrNotFound)
	})
	// The agent wakes and commits.
	res, err := e.store.NewCommitter(metadata.CommitConfig{}).Commit(ctx(t), []metadata.Append{{
		Topic: tp, Object: key, ObjectSize: int64(len(obj)), Offset: extents[0].Offset, Length: extents[0].Length,
		Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1, MinTimestamp: batch.BaseTimestamp, MaxTimestamp: batch.MaxTimestamp}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := res[0].Batches[0].Err; !errors.Is(got, metadata.ErrObjectDoomed) {
		t.Fatalf("committing a deleted object: %v, want ErrObjectDoomed", got)
	}
	if st, err := e.store.GetPartitionState(ctx(t), tp, 0); err != nil || st.Next != 0 {
		t.Fatalf("partition state %+v (%v): the late commit moved the high watermark", st, err)
	}
	// A fresh object still commits.
	fresh := segments.NewObjectKey(time.Now().Add(time.Second), segments.KindFlush)
	if err := e.bucket.Put(ctx(t), fresh, obj); err != nil {
		t.Fatal(err)
	}
	res, err = e.store.NewCommitter(metadata.CommitConfig{}).Commit(ctx(t), []metadata.Append{{
		Topic: tp, Object: fresh, ObjectSize: int64(len(obj)), Offset: extents[0].Offset, Length: extents[0].Length,
		Batches: []metadata.BatchMeta{{Records: 1, ProducerID: -1, MinTimestamp: batch.BaseTimestamp, MaxTimestamp: batch.MaxTimestamp}},
	}})
	if err != nil || res[0].Batches[0].Err != nil {
		t.Fatalf("committing a fresh object: %v %v", err, res[0].Batches[0].Err)
	}
}
