package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/metadata"
)

// txnVersions runs a transactional test as a transaction version 2
// client (KIP-890: produce adds partitions, EndTxn bumps the epoch) and as
// a version 1 client (AddPartitionsToTxn, AddOffsetsToTxn, one epoch per
// producer session), which clients capped below EndTxn v5 are.
func txnVersions(t *testing.T, test func(t *testing.T, producer []kgo.Opt)) {
	v1 := kversion.Stable()
	v1.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
	v1.SetMaxKeyVersion(int16(kmsg.Produce), 11)
	v1.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 4)
	t.Run("v2", func(t *testing.T) { test(t, nil) })
	t.Run("v1", func(t *testing.T) { test(t, []kgo.Opt{kgo.MaxVersions(v1)}) })
}

// readAll reads a topic from the start with the given isolation level
// until it has read want records or the high watermark (for
// read_committed, the last stable offset) of every partition.
func readAll(t *testing.T, c *testCluster, topic string, level kgo.IsolationLevel, want int) []string {
	t.Helper()
	ctx := testCtx(t)
	cl := c.client(kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(level),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("fetch: %v", e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

// A transactional producer's committed transactions are read by
// read_committed consumers and its aborted ones are not; read_uncommitted
// consumers read both; records outside transactions are read by both.
func TestTransactionsCommitAndAbort(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(nil)
		createTopic(t, c, "tx", 3, nil)
		ctx := testCtx(t)

		p := c.client(append(producer, kgo.TransactionalID("orders-tx"), kgo.DefaultProduceTopic("tx"), kgo.TransactionTimeout(30*time.Second))...)
		defer p.Close()
		end := func(commit bool, values ...string) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			for _, v := range values {
				if err := p.ProduceSync(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}).FirstErr(); err != nil {
					t.Fatalf("producing %s: %v", v, err)
				}
			}
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatalf("ending the transaction (commit %v): %v", commit, err)
			}
		}
		end(true, "c1", "c2", "c3")
		end(false, "a1", "a2", "a3")
		end(true, "c4", "c5")

		plain := c.client(kgo.DefaultProduceTopic("tx"))
		defer plain.Close()
		if err := plain.ProduceSync(ctx, &kgo.Record{Key: []byte("p1"), Value: []byte("p1")}).FirstErr(); err != nil {
			t.Fatal(err)
		}

		committed := readAll(t, c, "tx", kgo.ReadCommitted(), 6)
		if want := []string{"c1", "c2", "c3", "c4", "c5", "p1"}; !slices.Equal(committed, want) {
			t.Fatalf("read_committed read %q, want %q", committed, want)
		}
		uncommitted := readAll(t, c, "tx", kgo.ReadUncommitted(), 9)
		if want := []string{"a1", "a2", "a3", "c1", "c2", "c3", "c4", "c5", "p1"}; !slices.Equal(uncommitted, want) {
			t.Fatalf("read_uncommitted read %q, want %q", uncommitted, want)
		}
	})
}

// An open transaction holds read_committed consumers (and the last stable
// offset ListOffsets reports) at its first offset until it ends.
func TestOpenTransactionHoldsTheLastStableOffset(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(nil)
		createTopic(t, c, "lso", 1, nil)
		ctx := testCtx(t)

		plain := c.client(kgo.DefaultProduceTopic("lso"))
		defer plain.Close()
		p := c.client(append(producer, kgo.TransactionalID("lso-tx"), kgo.DefaultProduceTopic("lso"))...)
		defer p.Close()
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		latest := func(level int8) int64 {
			t.Helper()
			req := kmsg.NewPtrListOffsetsRequest()
			req.IsolationLevel = level
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "lso"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = 0, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, plain)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0].Offset
		}
		if hw, lso := latest(0), latest(1); hw != 3 || lso != 1 {
			t.Fatalf("with a transaction open from offset 1: latest %d (read_uncommitted), %d (read_committed); want 3, 1", hw, lso)
		}
		if got := readAll(t, c, "lso", kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"before"}) {
			t.Fatalf("read_committed while the transaction is open: %q, want only %q", got, "before")
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		if hw, lso := latest(0), latest(1); hw != lso || hw < 4 {
			t.Fatalf("after the commit: latest %d (read_uncommitted), %d (read_committed); want equal, past the marker", hw, lso)
		}
		if got := readAll(t, c, "lso", kgo.ReadCommitted(), 3); !slices.Equal(got, []string{"after", "before", "open"}) {
			t.Fatalf("read_committed after the commit: %q", got)
		}
	})
}

// A second producer with the same transactional ID fences the first: the
// first's open transaction is aborted, and its next request fails.
func TestTransactionalProducerFenced(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(nil)
		createTopic(t, c, "fence", 2, nil)
		ctx := testCtx(t)

		old := c.client(append(producer, kgo.TransactionalID("fence-tx"), kgo.DefaultProduceTopic("fence"))...)
		defer old.Close()
		if err := old.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		newer := c.client(append(producer, kgo.TransactionalID("fence-tx"), kgo.DefaultProduceTopic("fence"))...)
		defer newer.Close()
		if err := newer.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := newer.ProduceSync(ctx, &kgo.Record{Value: []byte("live")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := newer.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		err := old.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie 2")}).FirstErr()
		if err == nil {
			err = old.EndTransaction(ctx, kgo.TryCommit)
		}
		if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.InvalidProducerIDMapping) {
			t.Fatalf("the fenced producer got %v; want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
		}
		if got := readAll(t, c, "fence", kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"live"}) {
			t.Fatalf("read_committed: %q, want only the newer producer's", got)
		}
	})
}

// A transaction left open past its timeout is aborted by the coordinator;
// the producer's commit then fails, and nothing of it is read committed.
func TestTransactionTimesOut(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(func(cfg *agent.Config) { cfg.Txns.AbortCheckInterval = 100 * time.Millisecond })
		createTopic(t, c, "timeout", 1, nil)
		ctx := testCtx(t)

		p := c.client(append(producer, kgo.TransactionalID("slow-tx"), kgo.DefaultProduceTopic("timeout"), kgo.TransactionTimeout(time.Second))...)
		defer p.Close()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		plain := c.client(kgo.DefaultProduceTopic("timeout"))
		defer plain.Close()
		// Wait until the transaction is aborted: the last stable offset moves
		// past its marker, so a record after it becomes readable.
		if err := plain.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, c, "timeout", kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"after"}) {
			t.Fatalf("read_committed after the timeout: %q, want %q", got, "after")
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err == nil {
			t.Fatal("committing a transaction the coordinator aborted succeeded")
		}
	})
}

// Offsets committed in a transaction become the group's committed offsets
// when it commits, and are dropped when it aborts.
func TestTransactionalOffsetCommit(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(nil)
		createTopic(t, c, "in", 1, nil)
		createTopic(t, c, "out", 1, nil)
		ctx := testCtx(t)

		p := c.client(append(producer, kgo.TransactionalID("eos"), kgo.DefaultProduceTopic("out"))...)
		defer p.Close()
		fetchedStable := func(requireStable bool) (int64, error) {
			t.Helper()
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group, req.RequireStable = "eos-group", requireStable
			rt := kmsg.NewOffsetFetchRequestTopic()
			rt.Topic, rt.Partitions = "in", []int32{0}
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Topics) == 0 || len(resp.Topics[0].Partitions) == 0 {
				return -1, nil
			}
			rp := resp.Topics[0].Partitions[0]
			return rp.Offset, kerr.ErrorForCode(rp.ErrorCode)
		}
		fetched := func() int64 {
			t.Helper()
			o, err := fetchedStable(false)
			if err != nil {
				t.Fatal(err)
			}
			return o
		}
		var before int64
		commitOffset := func(offset int64, commit bool) {
			t.Helper()
			if err := p.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(offset))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			// What GroupTransactSession does: the group joins the
			// transaction and its offsets go with it.
			id, epoch, err := p.ProducerID(ctx)
			if err != nil {
				t.Fatal(err)
			}
			add := kmsg.NewPtrAddOffsetsToTxnRequest()
			add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = "eos", id, epoch, "eos-group"
			if resp, err := add.RequestWith(ctx, p); err != nil || resp.ErrorCode != 0 {
				t.Fatalf("AddOffsetsToTxn: %v, %v", err, resp)
			}
			toc := kmsg.NewPtrTxnOffsetCommitRequest()
			toc.TransactionalID, toc.Group, toc.ProducerID, toc.ProducerEpoch = "eos", "eos-group", id, epoch
			toc.Generation = -1
			rt := kmsg.NewTxnOffsetCommitRequestTopic()
			rt.Topic = "in"
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset = 0, offset
			rt.Partitions = append(rt.Partitions, rp)
			toc.Topics = append(toc.Topics, rt)
			resp, err := toc.RequestWith(ctx, p)
			if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("TxnOffsetCommit: %v, %+v", err, resp)
			}
			// Pending: a require_stable fetch is told to retry, a
			// plain one gets the offset committed before.
			if _, err := fetchedStable(true); !errors.Is(err, kerr.UnstableOffsetCommit) {
				t.Fatalf("require_stable OffsetFetch with offsets pending: %v, want UNSTABLE_OFFSET_COMMIT", err)
			}
			if got := fetched(); got != before {
				t.Fatalf("OffsetFetch with offsets pending: %d, want %d", got, before)
			}
			if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
				t.Fatal(err)
			}
		}
		before = -1
		commitOffset(5, true)
		if got, err := fetchedStable(true); got != 5 || err != nil {
			t.Fatalf("committed offset after a committed transaction: %d, %v; want 5", got, err)
		}
		before = 5
		commitOffset(9, false)
		if got, err := fetchedStable(true); got != 5 || err != nil {
			t.Fatalf("committed offset after an aborted transaction: %d, want still 5", got)
		}
	})
}

// A consume-transform-produce chain of two stages, each a group of two
// transactional members (GroupTransactSession) with a different balancer:
// every source record reaches the sink exactly once, in order per key, and
// offsets in every topic only grow.
func TestTransactionalChain(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(nil)
		for _, name := range []string{"src", "mid", "dst"} {
			createTopic(t, c, name, 4, nil)
		}
		ctx := testCtx(t)
		const n = 400
		src := c.client(kgo.DefaultProduceTopic("src"))
		defer src.Close()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%16)), Value: []byte(fmt.Sprintf("%05d", i))})
		}
		if err := src.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}

		stage := func(name, from, to string, balancer kgo.GroupBalancer, member int) {
			opts := append(append(c.clientOpts(), producer...),
				kgo.SeedBrokers(c.agents[0].Addr()),
				kgo.TransactionalID(fmt.Sprintf("%s-%d", name, member)),
				kgo.ConsumerGroup(name), kgo.ConsumeTopics(from), kgo.Balancers(balancer),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.DefaultProduceTopic(to), kgo.FetchMaxWait(200*time.Millisecond))
			s, err := kgo.NewGroupTransactSession(opts...)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			for ctx.Err() == nil {
				pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				fs := s.PollFetches(pctx)
				cancel()
				if ctx.Err() != nil {
					return
				}
				var recs []*kgo.Record
				fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
				if len(recs) == 0 {
					continue
				}
				if err := s.Begin(); err != nil {
					t.Errorf("%s-%d: begin: %v", name, member, err)
					return
				}
				for _, r := range recs {
					s.Produce(ctx, &kgo.Record{Key: r.Key, Value: r.Value}, nil)
				}
				if _, err := s.End(ctx, kgo.TryCommit); err != nil && ctx.Err() == nil {
					// A rebalance or a retriable error aborts the
					// transaction; the records are read again.
					t.Logf("%s-%d: end: %v", name, member, err)
				}
			}
		}
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		ctx = sctx
		var wg sync.WaitGroup
		for m := range 2 {
			wg.Add(2)
			go func() { defer wg.Done(); stage("stage-a", "src", "mid", kgo.CooperativeStickyBalancer(), m) }()
			go func() { defer wg.Done(); stage("stage-b", "mid", "dst", kgo.RangeBalancer(), m) }()
		}

		// Read the sink until it holds every source record.
		sink := c.client(kgo.ConsumeTopics("dst"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
		defer sink.Close()
		seen := map[string]int{}
		lastOffset := map[int32]int64{}
		lastByKey := map[string]string{}
		deadline := time.Now().Add(60 * time.Second)
		for len(seen) < n && time.Now().Before(deadline) {
			pctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			fs := sink.PollFetches(pctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				seen[string(r.Value)]++
				if prev, ok := lastOffset[r.Partition]; ok && r.Offset <= prev {
					t.Errorf("dst/%d: offset %d after %d", r.Partition, r.Offset, prev)
				}
				lastOffset[r.Partition] = r.Offset
				if prev := lastByKey[string(r.Key)]; prev >= string(r.Value) {
					t.Errorf("key %s: %s after %s", r.Key, r.Value, prev)
				}
				lastByKey[string(r.Key)] = string(r.Value)
			})
		}
		stop()
		wg.Wait()
		if len(seen) != n {
			t.Fatalf("the sink holds %d of the %d source records", len(seen), n)
		}
		for v, k := range seen {
			if k != 1 {
				t.Fatalf("record %s reached the sink %d times", v, k)
			}
		}
	})
}

// A stale epoch is PRODUCER_FENCED from the versions that know that code
// (EndTxn v2+, InitProducerId v4+), and INVALID_PRODUCER_EPOCH before, as
// Kafka answers.
func TestFencedCodeByVersion(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(nil)
	ctx := testCtx(t)
	cl := c.client()
	defer cl.Close()
	init := func() (int64, int16) {
		t.Helper()
		req := kmsg.NewPtrInitProducerIDRequest()
		id := "raw-tx"
		req.TransactionalID, req.TransactionTimeoutMillis = &id, 10000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %v, %+v", err, resp)
		}
		return resp.ProducerID, resp.ProducerEpoch
	}
	pid, stale := init()
	if _, epoch := init(); epoch != stale+1 {
		t.Fatalf("second InitProducerId: epoch %d, want %d", epoch, stale+1)
	}
	for _, tc := range []struct {
		version int16
		want    *kerr.Error
	}{{1, kerr.InvalidProducerEpoch}, {3, kerr.ProducerFenced}} {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(int16(kmsg.EndTxn), tc.version)
		vcl := c.client(kgo.MaxVersions(vs))
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = "raw-tx", pid, stale, true
		resp, err := req.RequestWith(ctx, vcl)
		vcl.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := kerr.ErrorForCode(resp.ErrorCode); got != tc.want {
			t.Errorf("EndTxn v%d with a stale epoch: %v, want %v", tc.version, got, tc.want)
		}
	}
}

// An EndTxn (transaction version 2) that died after its prepare leaves
// the record in PrepareCommit at the bumped epoch. A client that never
// heard back re-initializes with the producer ID and epoch it had, as
// franz-go does after an unconfirmed end: that is the bump's epoch, yet
// the answer must come only once the transaction is complete, or the
// client produces at an epoch whose partitions are still being ended
// (CONCURRENT_TRANSACTIONS until the coordinator's check settles it) and
// its next abort is refused with INVALID_TXN_STATE.
func TestInitProducerIDCompletesAPreparedEnd(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(func(cfg *agent.Config) { cfg.Txns.AbortCheckInterval = time.Hour })
	createTopic(t, c, "prepared", 1, nil)
	ctx := testCtx(t)

	p := c.client(kgo.TransactionalID("prepared-tx"), kgo.DefaultProduceTopic("prepared"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("prepared")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// What EndTxn v5 with commit writes first, as if its agent died next.
	st, found, err := c.store.GetTxn(ctx, "prepared-tx")
	if err != nil || !found || st.Status != metadata.TxnOngoing {
		t.Fatalf("the transaction's record: %+v, %v, %v", st, found, err)
	}
	st.Status, st.LastProducerID, st.LastEpoch, st.Epoch = metadata.TxnPrepareCommit, pid, epoch, epoch+1
	if _, err := c.store.PutTxn(ctx, st); err != nil {
		t.Fatal(err)
	}

	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("prepared-tx")
	req.TransactionTimeoutMillis = 60_000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	resp, err := req.RequestWith(ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil || resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("InitProducerId with the epoch before the bump: %d/%d, %v; want %d/%d", resp.ProducerID, resp.ProducerEpoch, err, pid, epoch+1)
	}
	if st, _, _ := c.store.GetTxn(ctx, "prepared-tx"); st.Status != metadata.TxnCompleteCommit {
		t.Fatalf("after InitProducerId the transaction is %s, want %s", st.Status, metadata.TxnCompleteCommit)
	}
	if got := readAll(t, c, "prepared", kgo.ReadCommitted(), 1); !slices.Equal(got, []string{"prepared"}) {
		t.Fatalf("read_committed: %q, want the prepared commit's record", got)
	}
}
