package agent_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions are not served: a producer with a transactional ID is told
// so with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, and nothing it tried is
// written. A read_committed consumer reads what an idempotent producer
// wrote, as a read_uncommitted one does.
func TestTransactionalProducersAreRefusedAndReadCommittedReads(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(nil)
	createTopic(t, c, "tx", 2, nil)
	ctx := testCtx(t)

	txp := c.client(kgo.TransactionalID("orders-tx"), kgo.DefaultProduceTopic("tx"), kgo.RetryTimeout(5*time.Second))
	defer txp.Close()
	err := txp.BeginTransaction()
	if err == nil {
		err = txp.ProduceSync(ctx, &kgo.Record{Value: []byte("in a transaction")}).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("a transactional producer got %v; want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}

	p := c.client(kgo.DefaultProduceTopic("tx"))
	defer p.Close()
	for _, v := range []string{"a", "b", "c", "d"} {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	rc := c.client(kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer rc.Close()
	var got []string
	for len(got) < 4 && ctx.Err() == nil {
		fs := rc.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatalf("read_committed fetch: %v", errs)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != 4 {
		t.Fatalf("read_committed read %q, want the 4 records produced", got)
	}
	for _, v := range got {
		if v == "in a transaction" {
			t.Fatalf("the refused transactional record was written: read %q", got)
		}
	}
}
