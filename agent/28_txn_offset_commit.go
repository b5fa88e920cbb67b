package agent

// TxnOffsetCommit, v0–v5.
//
// Sent to the group's coordinator: offsets a transactional producer
// commits for a consumer group, which become the group's committed offsets
// only if the transaction commits. The group's generation, member ID and
// instance ID (v3+) are checked as OffsetCommit checks them; the offsets
// are kept in the transaction's record (txn_coordinator.go) until its end.
// The group must be in the transaction (AddOffsetsToTxn), except under
// transaction version 2 (v5+), where this request adds it.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 28, min: 0, max: 5, serve: handleAsync((*Agent).handleTxnOffsetCommit)})
}

func (a *Agent) handleTxnOffsetCommit(ctx context.Context, rq *request, req *kmsg.TxnOffsetCommitRequest) (*kmsg.TxnOffsetCommitResponse, error) {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	var (
		offsets []metadata.TxnOffset
		codes   []*int16
	)
	groupDenied := !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group)
	txnDenied := !a.authorized(rq.conn, metadata.ACLOpWrite, metadata.ACLResourceTransactionalID, req.TransactionalID)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(rt.Partitions))
		topic, terr := a.lookupTopic(ctx, rt.Topic)
		switch {
		case txnDenied:
			terr = kerr.TransactionalIDAuthorizationFailed
		case groupDenied:
			terr = kerr.GroupAuthorizationFailed
		case terr == nil && !a.authorizedTopic(rq.conn, metadata.ACLOpRead, rt.Topic):
			terr = kerr.TopicAuthorizationFailed
		}
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			*sp = kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case terr != nil:
				ke, _ := kafkaError(terr)
				sp.ErrorCode = ke.Code
			case rp.Partition < 0 || rp.Partition >= topic.Partitions:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadata:
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := metadata.TxnOffset{Group: req.Group, Topic: rt.Topic, TopicID: topic.ID, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1, Metadata: rp.Metadata}
				if req.Version >= 2 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				offsets = append(offsets, o)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	for ti := range resp.Topics {
		for pi := range resp.Topics[ti].Partitions {
			if resp.Topics[ti].Partitions[pi].ErrorCode == 0 {
				codes = append(codes, &resp.Topics[ti].Partitions[pi].ErrorCode)
			}
		}
	}
	if len(codes) == 0 {
		return resp, nil
	}
	setAll := func(err error) {
		ke, _ := kafkaError(err)
		for _, c := range codes {
			*c = ke.Code
		}
	}
	if err := metadata.ValidateTransactionalID(req.TransactionalID); err != nil {
		setAll(kafkaErrorf(kerr.InvalidRequest, "%s", err))
		return resp, nil
	}
	g, err := a.groups.acquire(ctx, req.Group)
	if err != nil {
		setAll(err)
		return resp, nil
	}
	if req.Version >= 3 {
		parts := make([]idPartition, len(offsets))
		for i, o := range offsets {
			parts[i] = idPartition{o.TopicID, o.Partition}
		}
		if _, err := g.checkCommitLocked(req.Generation, req.MemberID, req.InstanceID, parts, kerr.IllegalGeneration); err != nil {
			g.unlockReleasingIdle()
			setAll(err)
			return resp, nil
		}
	}
	g.unlockReleasingIdle()
	// Marked first: a require_stable OffsetFetch then finds the
	// transaction (a mark without offsets behind it is ignored).
	if err := a.store.MarkTxnGroup(ctx, req.Group, req.TransactionalID); err != nil {
		setAll(a.txns.etcdErr("marking the group's transaction", err))
		return resp, nil
	}
	if err := a.txns.addOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, req.Version >= 5, offsets); err != nil {
		setAll(err)
	}
	return resp, nil
}

// addOffsets records offsets committed through a transaction. Any agent
// may do this (the group's coordinator does): the record's
// compare-and-swap orders it with the transaction coordinator's writes.
func (tc *txnCoordinator) addOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, addGroup bool, offsets []metadata.TxnOffset) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return tc.retry("committing offsets in transaction "+id, 8, func() error {
		return tc.addOffsetsOnce(ctx, id, pid, epoch, group, addGroup, offsets)
	})
}

func (tc *txnCoordinator) addOffsetsOnce(ctx context.Context, id string, pid int64, epoch int16, group string, addGroup bool, offsets []metadata.TxnOffset) error {
	st, err := tc.current(ctx, id, pid, epoch)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	switch {
	case addGroup:
		st.AddGroup(group, now)
	case st.Status != metadata.TxnOngoing || !slices.Contains(st.Groups, group):
		return kafkaErrorf(kerr.InvalidTxnState, "group %q is not in transaction %q; call AddOffsetsToTxn first", group, id)
	}
	st.AddOffsets(offsets)
	st.Updated = now
	_, err = tc.a.store.PutTxn(ctx, st)
	return err
}
