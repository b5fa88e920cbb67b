package agent

// AddPartitionsToTxn, v0–v5.
//
// v0–v3 come from producers (transaction version 1): the partitions join
// the producer's transaction in its record, which starts the transaction
// if none is ongoing. v4+ batch several transactional IDs, as brokers send
// them to coordinators; a VerifyOnly transaction is checked, not changed
// (each partition must already be in the ongoing transaction), as Kafka
// 3.6+ coordinators answer.
//
// Errors, as Kafka gives them: a topic or partition that does not exist
// fails with UNKNOWN_TOPIC_OR_PARTITION and the others of the request with
// OPERATION_NOT_ATTEMPTED; a transaction being ended gets
// CONCURRENT_TRANSACTIONS (the producer retries); a stale epoch
// PRODUCER_FENCED.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 24, min: 0, max: 5, serve: handleAsync((*Agent).handleAddPartitionsToTxn)})
}

func (a *Agent) handleAddPartitionsToTxn(ctx context.Context, rq *request, req *kmsg.AddPartitionsToTxnRequest) (*kmsg.AddPartitionsToTxnResponse, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version < 4 {
		topics := make([]kmsg.AddPartitionsToTxnRequestTransactionTopic, len(req.Topics))
		for i, t := range req.Topics {
			topics[i] = kmsg.AddPartitionsToTxnRequestTransactionTopic{Topic: t.Topic, Partitions: t.Partitions}
		}
		codes := a.txns.addPartitions(ctx, rq, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
		if req.Version < 2 {
			// PRODUCER_FENCED came with v2; older versions get
			// INVALID_PRODUCER_EPOCH, as Kafka answers them.
			for _, cs := range codes {
				for i, c := range cs {
					if c == kerr.ProducerFenced.Code {
						cs[i] = kerr.InvalidProducerEpoch.Code
					}
				}
			}
		}
		for ti, t := range req.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			for pi, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[ti][pi]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	if !a.authorizedCluster(rq.conn, metadata.ACLOpClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	for _, tx := range req.Transactions {
		codes := a.txns.addPartitions(ctx, rq, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, tx.Topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for ti, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for pi, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[ti][pi]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp, nil
}

// addPartitions adds (or, verifyOnly, checks) partitions of one
// transaction and returns an error code per partition, by topic.
func (tc *txnCoordinator) addPartitions(ctx context.Context, rq *request, id string, pid int64, epoch int16, verifyOnly bool, topics []kmsg.AddPartitionsToTxnRequestTransactionTopic) [][]int16 {
	codes := make([][]int16, len(topics))
	setAll := func(code int16) [][]int16 {
		for i, t := range topics {
			codes[i] = make([]int16, len(t.Partitions))
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
		return codes
	}
	if err := tc.check(rq, id); err != nil {
		ke, _ := kafkaError(err)
		return setAll(ke.Code)
	}
	// Resolve the partitions first: any unknown fails the request.
	var (
		parts   []metadata.TxnPartition
		unknown bool
	)
	for i, t := range topics {
		codes[i] = make([]int16, len(t.Partitions))
		topic, err := tc.a.lookupTopic(ctx, t.Topic)
		denied := err == nil && !tc.a.authorizedTopic(rq.conn, metadata.ACLOpWrite, t.Topic)
		for j, p := range t.Partitions {
			switch {
			case denied:
				codes[i][j] = kerr.TopicAuthorizationFailed.Code
				unknown = true
			case err != nil || p < 0 || p >= topic.Partitions:
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				unknown = true
			default:
				parts = append(parts, metadata.TxnPartition{Topic: topic.Name, TopicID: topic.ID, Partition: p})
			}
		}
	}
	if unknown {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = kerr.OperationNotAttempted.Code
				}
			}
		}
		return codes
	}
	unlock := tc.lock(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tc.retry("adding partitions to transaction "+id, 5, func() error {
		return tc.addOnce(ctx, id, pid, epoch, verifyOnly, parts)
	}); err != nil {
		ke, _ := kafkaError(err)
		return setAll(ke.Code)
	}
	return codes
}

func (tc *txnCoordinator) addOnce(ctx context.Context, id string, pid int64, epoch int16, verifyOnly bool, parts []metadata.TxnPartition) error {
	st, err := tc.current(ctx, id, pid, epoch)
	if err != nil {
		return err
	}
	if verifyOnly {
		for _, p := range parts {
			if st.Status != metadata.TxnOngoing || !st.HasPartition(p.Topic, p.Partition) {
				return kafkaErrorf(kerr.InvalidTxnState, "%s/%d is not in transaction %q", p.Topic, p.Partition, id)
			}
		}
		return nil
	}
	if st.Status == metadata.TxnOngoing && hasAll(st, parts) {
		return nil
	}
	st.AddPartitions(parts, time.Now().UnixMilli())
	st.Updated = time.Now().UnixMilli()
	_, err = tc.a.store.PutTxn(ctx, st)
	return err
}

func hasAll(st metadata.TxnState, parts []metadata.TxnPartition) bool {
	for _, p := range parts {
		if !st.HasPartition(p.Topic, p.Partition) {
			return false
		}
	}
	return true
}
