package agent

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// txnProduceCheck admits one produce request's transactional batches:
// their producer must be the transactional ID's current one, at its
// current epoch, and each partition in its ongoing transaction, or, under
// transaction version 2 (produce v12+), is added to it here. The record is
// read once per request.
type txnProduceCheck struct {
	tc      *txnCoordinator
	id      string
	version int16

	loaded bool
	found  bool
	st     metadata.TxnState
}

func (tc *txnCoordinator) produceCheck(id string, version int16) *txnProduceCheck {
	return &txnProduceCheck{tc: tc, id: id, version: version}
}

// allow admits batches (already validated as transactional) for
// partition p of t, and returns their transaction's start time for the
// commit's check that it has not ended there meanwhile.
func (c *txnProduceCheck) allow(ctx context.Context, rq *request, t metadata.Topic, p int32, batches []segments.Batch) (int64, error) {
	if !c.tc.a.authorized(rq.conn, metadata.ACLOpWrite, metadata.ACLResourceTransactionalID, c.id) {
		return 0, kafkaErrorf(kerr.TransactionalIDAuthorizationFailed, "%s may not use transactional ID %q", rq.conn.auth.principal, c.id)
	}
	pid, epoch := batches[0].ProducerID, batches[0].ProducerEpoch
	for _, b := range batches[1:] {
		if b.ProducerID != pid || b.ProducerEpoch != epoch {
			return 0, kafkaErrorf(kerr.InvalidRecord, "the batches of one partition of a transactional produce name different producers")
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := c.tc.retry("checking transaction "+c.id, 5, func() error {
		err := c.allowOnce(ctx, t, p, pid, epoch)
		if errors.Is(err, metadata.ErrConflict) {
			c.loaded = false // read the record again
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return c.st.Started, nil
}

func (c *txnProduceCheck) allowOnce(ctx context.Context, t metadata.Topic, p int32, pid int64, epoch int16) error {
	if !c.loaded {
		st, found, err := c.tc.a.store.GetTxn(ctx, c.id)
		if err != nil {
			return err
		}
		c.st, c.found, c.loaded = st, found, true
	}
	if !c.found {
		return kafkaErrorf(kerr.InvalidProducerIDMapping, "transactional ID %q has no producer; call InitProducerId", c.id)
	}
	if err := producerMatches(c.st, pid, epoch); err != nil {
		// A partition answers a stale epoch INVALID_PRODUCER_EPOCH.
		return fencedAsEpoch(err)
	}
	if c.st.Status == metadata.TxnOngoing && c.st.HasPartition(t.Name, p) {
		return nil
	}
	if c.version < 12 {
		return kafkaErrorf(kerr.InvalidTxnState, "%s/%d is not in transaction %q: add it with AddPartitionsToTxn first", t.Name, p, c.id)
	}
	switch c.st.Status {
	case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
		return kafkaErrorf(kerr.ConcurrentTransactions, "transaction %q is being ended; retry", c.id)
	case metadata.TxnDead:
		return kafkaErrorf(kerr.InvalidTxnState, "transactional ID %q is being removed", c.id)
	}
	// Transaction version 2: producing adds the partition.
	next := c.st
	now := time.Now().UnixMilli()
	next.AddPartitions([]metadata.TxnPartition{{Topic: t.Name, TopicID: t.ID, Partition: p}}, now)
	next.Updated = now
	st, err := c.tc.a.store.PutTxn(ctx, next)
	if err != nil {
		return err
	}
	c.st = st
	return nil
}
