package agent_test

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
)

// listTxns sends ListTransactions to every agent, as admin clients do, and
// merges the answers: transactional ID to state. It fails the test on any
// error.
func listTxns(t *testing.T, cl *kgo.Client, req *kmsg.ListTransactionsRequest) map[string]kmsg.ListTransactionsResponseTransactionState {
	t.Helper()
	out := map[string]kmsg.ListTransactionsResponseTransactionState{}
	for _, shard := range cl.RequestSharded(testCtx(t), req) {
		if shard.Err != nil {
			t.Fatalf("ListTransactions to node %d: %v", shard.Meta.NodeID, shard.Err)
		}
		resp := shard.Resp.(*kmsg.ListTransactionsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			t.Fatalf("ListTransactions to node %d: %v", shard.Meta.NodeID, err)
		}
		for _, ts := range resp.TransactionStates {
			if _, dup := out[ts.TransactionalID]; dup {
				t.Fatalf("transactional ID %q listed by two agents", ts.TransactionalID)
			}
			out[ts.TransactionalID] = ts
		}
	}
	return out
}

// DescribeTransactions, ListTransactions and DescribeProducers show an
// open transaction (state, partitions, start time, the partition's
// producer with the transaction's first offset) and then its commit;
// only the coordinator describes an ID, each agent lists only what it
// coordinates, and the filters work.
func TestDescribeAndListTransactions(t *testing.T) {
	txnVersions(t, func(t *testing.T, producer []kgo.Opt) {
		c := newTestCluster(t)
		c.addAgent(fastFlush)
		c.addAgent(fastFlush)
		createTopic(t, c, "txa", 2, nil)
		ctx := testCtx(t)
		adm := c.admin()
		cl := c.client()

		// An idempotent producer writes offset 0 of partition 1; the
		// transaction starts at 1.
		manual := kgo.RecordPartitioner(kgo.ManualPartitioner())
		plain := c.client(manual, kgo.DefaultProduceTopic("txa"))
		if err := plain.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("plain")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		p := c.client(append(producer, manual, kgo.TransactionalID("admin-tx"), kgo.DefaultProduceTopic("txa"), kgo.TransactionTimeout(45*time.Second))...)
		// franz-go opts in to transaction version 2 at the end of its
		// first transaction: one to partition 0 first.
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte("first")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		before := time.Now().UnixMilli()
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("in txn")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		pid, epoch, err := p.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		plainPID, _, err := plain.ProducerID(ctx)
		if err != nil {
			t.Fatal(err)
		}

		described, err := adm.DescribeTransactions(ctx, "admin-tx")
		if err != nil {
			t.Fatal(err)
		}
		d := described["admin-tx"]
		if d.Err != nil || d.State != "Ongoing" || d.ProducerID != pid || d.ProducerEpoch != epoch || d.TimeoutMillis != 45000 ||
			d.StartTimestamp < before-1000 || d.StartTimestamp > time.Now().UnixMilli() ||
			len(d.Topics) != 1 || !slices.Equal(slices.Sorted(maps.Keys(d.Topics["txa"])), []int32{1}) {
			t.Fatalf("the open transaction described as %+v (producer %d, epoch %d, started after %d)", d, pid, epoch, before)
		}
		coordinator := d.Coordinator
		var other *agent.Agent
		for _, a := range c.agents {
			if a.NodeID() != coordinator {
				other = a
			}
		}

		// Only the coordinator describes it.
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = []string{"admin-tx"}
		resp, err := req.RequestWith(ctx, cl.Broker(int(other.NodeID())))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.TransactionStates) != 1 || resp.TransactionStates[0].ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("DescribeTransactions at the agent that does not coordinate the ID: %+v", resp.TransactionStates)
		}

		// Listed once, by its coordinator, with the filters applied.
		listed, err := adm.ListTransactions(ctx, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if l, ok := listed["admin-tx"]; !ok || len(listed) != 1 || l.Coordinator != coordinator || l.ProducerID != pid || l.State != "Ongoing" {
			t.Fatalf("listed %+v", listed)
		}
		lreq := kmsg.NewPtrListTransactionsRequest()
		lreq.Version = 0
		resp0, err := lreq.RequestWith(ctx, cl.Broker(int(other.NodeID())))
		if err != nil || len(resp0.TransactionStates) != 0 {
			t.Fatalf("the agent that does not coordinate the ID lists %+v (%v)", resp0, err)
		}
		for _, tc := range []struct {
			name     string
			mod      func(*kmsg.ListTransactionsRequest)
			included bool
		}{
			{"state Ongoing", func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"Empty", "Ongoing"} }, true},
			{"state CompleteCommit", func(r *kmsg.ListTransactionsRequest) { r.StateFilters = []string{"CompleteCommit"} }, false},
			{"its producer ID", func(r *kmsg.ListTransactionsRequest) { r.ProducerIDFilters = []int64{pid + 1, pid} }, true},
			{"another producer ID", func(r *kmsg.ListTransactionsRequest) { r.ProducerIDFilters = []int64{pid + 1} }, false},
			{"running longer than 0 ms", func(r *kmsg.ListTransactionsRequest) { r.DurationFilterMillis = 0 }, true},
			{"running longer than an hour", func(r *kmsg.ListTransactionsRequest) { r.DurationFilterMillis = time.Hour.Milliseconds() }, false},
			{"matching admin-.*", func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("admin-.*") }, true},
			{"matching admin (the whole ID must match)", func(r *kmsg.ListTransactionsRequest) { r.TransactionalIDPattern = kmsg.StringPtr("admin") }, false},
		} {
			time.Sleep(2 * time.Millisecond) // so the transaction has run for longer than 0 ms
			r := kmsg.NewPtrListTransactionsRequest()
			tc.mod(r)
			if _, ok := listTxns(t, cl, r)["admin-tx"]; ok != tc.included {
				t.Errorf("filter %s: listed %v, want %v", tc.name, ok, tc.included)
			}
		}
		r := kmsg.NewPtrListTransactionsRequest()
		r.StateFilters = []string{"Bogus"}
		for _, shard := range cl.RequestSharded(ctx, r) {
			resp := shard.Resp.(*kmsg.ListTransactionsResponse)
			if shard.Err != nil || !slices.Equal(resp.UnknownStateFilters, []string{"Bogus"}) || len(resp.TransactionStates) != 0 {
				t.Errorf("an unknown state filter at node %d: %+v (%v)", shard.Meta.NodeID, resp, shard.Err)
			}
		}
		r = kmsg.NewPtrListTransactionsRequest()
		r.TransactionalIDPattern = kmsg.StringPtr("a)|(b")
		for _, shard := range cl.RequestSharded(ctx, r) {
			if resp := shard.Resp.(*kmsg.ListTransactionsResponse); shard.Err != nil || resp.ErrorCode != kerr.InvalidRegularExpression.Code {
				t.Errorf("an invalid pattern at node %d: %+v (%v)", shard.Meta.NodeID, resp, shard.Err)
			}
		}

		// The partition's producers: the idempotent one, and the
		// transactional one with its transaction from offset 1.
		producers := func() kadm.DescribedProducers {
			t.Helper()
			dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"txa": {1: {}}})
			if err != nil {
				t.Fatal(err)
			}
			part := dp["txa"].Partitions[1]
			if part.Err != nil {
				t.Fatalf("DescribeProducers txa/1: %v %s", part.Err, part.ErrMessage)
			}
			return part.ActiveProducers
		}
		ps := producers()
		if got := ps[pid]; len(ps) != 2 || got.ProducerEpoch != epoch || got.LastSequence != 0 || got.CurrentTxnStartOffset != 1 || got.CoordinatorEpoch != -1 || got.LastTimestamp < before-1000 {
			t.Fatalf("producers of txa/1 with the transaction open: %+v", ps)
		}
		if got := ps[plainPID]; got.LastSequence != 0 || got.CurrentTxnStartOffset != -1 {
			t.Fatalf("the idempotent producer of txa/1: %+v", got)
		}

		if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
		described, err = adm.DescribeTransactions(ctx, "admin-tx")
		if err != nil {
			t.Fatal(err)
		}
		d = described["admin-tx"]
		wantEpoch := epoch
		if producer == nil {
			wantEpoch++ // transaction version 2: the end bumped it
		}
		if d.Err != nil || d.State != "CompleteCommit" || d.ProducerID != pid || d.ProducerEpoch != wantEpoch || d.StartTimestamp != -1 || len(d.Topics) != 0 {
			t.Fatalf("the committed transaction described as %+v, want epoch %d", d, wantEpoch)
		}
		listed, err = adm.ListTransactions(ctx, nil, []string{"CompleteCommit"})
		if err != nil || listed["admin-tx"].State != "CompleteCommit" {
			t.Fatalf("listed after the commit: %+v (%v)", listed, err)
		}
		r = kmsg.NewPtrListTransactionsRequest()
		r.DurationFilterMillis = 0
		if got := listTxns(t, cl, r); len(got) != 0 {
			t.Errorf("with no transaction under way, a duration filter lists %+v", got)
		}
		// The marker carries the epoch the record has now (bumped by the
		// end under transaction version 2).
		if got := producers()[pid]; got.CurrentTxnStartOffset != -1 || got.ProducerEpoch != d.ProducerEpoch {
			t.Fatalf("the transactional producer of txa/1 after the commit: %+v, want no transaction, epoch %d", got, d.ProducerEpoch)
		}

		described, err = adm.DescribeTransactions(ctx, "no-such-tx")
		if err != nil {
			t.Fatal(err)
		}
		if d := described["no-such-tx"]; !errors.Is(d.Err, kerr.TransactionalIDNotFound) {
			t.Fatalf("an unknown transactional ID described as %+v", d)
		}
	})
}

// DescribeProducers answers UNKNOWN_TOPIC_OR_PARTITION for topics and
// partitions that do not exist, and any agent answers for any partition.
func TestDescribeProducersUnknownPartitions(t *testing.T) {
	c := newTestCluster(t)
	a := c.addAgent(fastFlush)
	createTopic(t, c, "dp", 1, nil)
	ctx := testCtx(t)
	cl := c.client(kgo.DefaultProduceTopic("dp"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, _, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrDescribeProducersRequest()
	for _, rt := range []struct {
		topic string
		parts []int32
	}{{"dp", []int32{0, 1, -1}}, {"nope", []int32{0}}} {
		drt := kmsg.NewDescribeProducersRequestTopic()
		drt.Topic, drt.Partitions = rt.topic, rt.parts
		req.Topics = append(req.Topics, drt)
	}
	resp, err := req.RequestWith(ctx, cl.Broker(int(a.NodeID())))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 3 || len(resp.Topics[1].Partitions) != 1 {
		t.Fatalf("answer %+v", resp)
	}
	p0 := resp.Topics[0].Partitions[0]
	if p0.ErrorCode != 0 || len(p0.ActiveProducers) != 1 || p0.ActiveProducers[0].ProducerID != pid || p0.ActiveProducers[0].CurrentTxnStartOffset != -1 {
		t.Errorf("dp/0: %+v", p0)
	}
	for _, p := range []kmsg.DescribeProducersResponseTopicPartition{resp.Topics[0].Partitions[1], resp.Topics[0].Partitions[2], resp.Topics[1].Partitions[0]} {
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.ErrorMessage == nil {
			t.Errorf("partition %d: error %d (%v), want UNKNOWN_TOPIC_OR_PARTITION with a message", p.Partition, p.ErrorCode, p.ErrorMessage)
		}
	}
}

// With ACLs enforced, DescribeTransactions needs DESCRIBE on the
// transactional ID, ListTransactions lists only IDs the principal may
// describe, and DescribeProducers needs READ on the topic.
func TestTransactionAdminACLs(t *testing.T) {
	_, a, pki := secureCluster(t, nil)
	addr := a.ListenerAddr(agent.ProtocolSASLSSL)
	ctx := testCtx(t)
	admin := kadm.NewClient(saslClient(t, addr, pki, scram256("admin")))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "acl-txn"); err != nil {
		t.Fatal(err)
	}
	p := saslClient(t, addr, pki, scram256("admin"), kgo.TransactionalID("secret-tx"), kgo.DefaultProduceTopic("acl-txn"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if listed, err := admin.ListTransactions(ctx, nil, nil); err != nil || len(listed) != 1 {
		t.Fatalf("the admin lists %+v (%v)", listed, err)
	}

	aliceCl := saslClient(t, addr, pki, scram256("alice"))
	alice := kadm.NewClient(aliceCl)
	aliceAt := aliceCl.Broker(int(a.NodeID()))
	req := kmsg.NewPtrDescribeTransactionsRequest()
	req.TransactionalIDs = []string{"secret-tx"}
	resp, err := req.RequestWith(ctx, aliceAt)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TransactionStates[0].ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("alice describes secret-tx without DESCRIBE: %+v", resp.TransactionStates[0])
	}
	lresp, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, aliceAt)
	if err != nil || lresp.ErrorCode != 0 || len(lresp.TransactionStates) != 0 {
		t.Fatalf("alice lists %+v (%v), want nothing", lresp, err)
	}
	dreq := kmsg.NewPtrDescribeProducersRequest()
	dt := kmsg.NewDescribeProducersRequestTopic()
	dt.Topic, dt.Partitions = "acl-txn", []int32{0}
	dreq.Topics = append(dreq.Topics, dt)
	dresp, err := dreq.RequestWith(ctx, aliceAt)
	if err != nil || dresp.Topics[0].Partitions[0].ErrorCode != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice describes the producers of acl-txn without READ: %+v (%v)", dresp, err)
	}

	// DESCRIBE on the ID (and on the topic, for its partitions to show).
	for _, acl := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:alice").TransactionalIDs("secret-tx").Operations(kadm.OpDescribe),
		kadm.NewACLs().Allow("User:alice").Topics("acl-txn").Operations(kadm.OpRead),
	} {
		if res, err := admin.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
			t.Fatalf("creating an ACL: %v %v", err, res)
		}
	}
	waitUntil(t, func() bool {
		resp, err := req.RequestWith(ctx, aliceAt)
		return err == nil && resp.TransactionStates[0].ErrorCode == 0 && len(resp.TransactionStates[0].Topics) == 1
	}, "alice describes secret-tx and its partition")
	if listed, err := alice.ListTransactions(ctx, nil, nil); err != nil || listed["secret-tx"].State != "Ongoing" {
		t.Fatalf("alice lists %+v (%v)", listed, err)
	}
	dresp, err = dreq.RequestWith(ctx, aliceAt)
	if err != nil || dresp.Topics[0].Partitions[0].ErrorCode != 0 || len(dresp.Topics[0].Partitions[0].ActiveProducers) != 1 {
		t.Fatalf("alice describes the producers of acl-txn with READ: %+v (%v)", dresp, err)
	}
}
