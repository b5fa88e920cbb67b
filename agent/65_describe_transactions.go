package agent

// DescribeTransactions, v0.
//
// Describes transactional IDs from their records in etcd (KIP-664), as
// Kafka's coordinators do: state (Kafka's names, which the records'
// statuses are), producer ID and epoch, transaction timeout, when the
// transaction under way started (-1 when none is) and its partitions.
// Each ID is answered by its coordinator (the agent FindCoordinator names
// for it), others get NOT_COORDINATOR; an ID with no record, or one being
// removed (Dead), is TRANSACTIONAL_ID_NOT_FOUND. It needs DESCRIBE on the
// transactional ID (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and, as in
// Kafka, topics the principal may not describe are left out of the
// partitions.
//
// A transaction between its Prepare and Complete states is reported as
// it stands, with all its partitions (floe writes its markers together
// and does not record which are written); describing never completes it.
// Kafka keeps a completed transaction's start time; floe clears it, so a
// completed transaction reports -1.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 65, min: 0, max: 0, serve: handleAsync((*Agent).handleDescribeTransactions)})
}

func (a *Agent) handleDescribeTransactions(ctx context.Context, rq *request, req *kmsg.DescribeTransactionsRequest) (*kmsg.DescribeTransactionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		st, err := a.txns.describe(ctx, rq, id)
		if err != nil {
			ke, msg := kafkaError(err)
			ts.ErrorCode = ke.Code
			if ke == kerr.UnknownServerError {
				a.log.Warn("DescribeTransactions", "transactional_id", id, "err", msg)
			}
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		ts.State = string(st.Status)
		ts.TimeoutMillis = st.TimeoutMs
		ts.ProducerID, ts.ProducerEpoch = st.ProducerID, st.Epoch
		ts.StartTimestamp = -1
		if st.Started > 0 {
			ts.StartTimestamp = st.Started
		}
		// Partitions are sorted by topic, then partition.
		for _, p := range st.Partitions {
			if n := len(ts.Topics); n > 0 && ts.Topics[n-1].Topic == p.Topic {
				ts.Topics[n-1].Partitions = append(ts.Topics[n-1].Partitions, p.Partition)
				continue
			}
			if !a.authorizedTopic(rq.conn, metadata.ACLOpDescribe, p.Topic) {
				continue
			}
			tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
			tt.Topic = p.Topic
			tt.Partitions = []int32{p.Partition}
			ts.Topics = append(ts.Topics, tt)
		}
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp, nil
}

// describe returns a transactional ID's record, for DescribeTransactions:
// the principal needs DESCRIBE on the ID, this agent must coordinate it,
// and it must have a record that is not being removed.
func (tc *txnCoordinator) describe(ctx context.Context, rq *request, id string) (metadata.TxnState, error) {
	if !tc.a.authorized(rq.conn, metadata.ACLOpDescribe, metadata.ACLResourceTransactionalID, id) {
		return metadata.TxnState{}, kafkaErrorf(kerr.TransactionalIDAuthorizationFailed, "%s may not describe transactional ID %q", rq.conn.auth.principal, id)
	}
	if err := metadata.ValidateTransactionalID(id); err != nil {
		return metadata.TxnState{}, kafkaErrorf(kerr.InvalidRequest, "%s", err)
	}
	if c := tc.coordinatorOf(id); c.NodeID != tc.a.NodeID() {
		return metadata.TxnState{}, kafkaErrorf(kerr.NotCoordinator, "node %d does not coordinate transactional ID %q; node %d does", tc.a.NodeID(), id, c.NodeID)
	}
	st, found, err := tc.a.store.GetTxn(ctx, id)
	if err != nil {
		return st, tc.etcdErr("describing transactional ID "+id, err)
	}
	if !found || st.Status == metadata.TxnDead {
		return st, kafkaErrorf(kerr.TransactionalIDNotFound, "transactional ID %q does not exist", id)
	}
	return st, nil
}
