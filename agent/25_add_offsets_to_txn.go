package agent

// AddOffsetsToTxn, v0–v4.
//
// A consumer group joins the producer's transaction, so offsets it commits
// through TxnOffsetCommit become the group's committed offsets when the
// transaction commits (and are dropped if it aborts). Transaction version
// 2 producers skip it: TxnOffsetCommit v5+ adds the group itself.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 25, min: 0, max: 4, serve: handleSync((*Agent).handleAddOffsetsToTxn)})
}

func (a *Agent) handleAddOffsetsToTxn(ctx context.Context, rq *request, req *kmsg.AddOffsetsToTxnRequest) (*kmsg.AddOffsetsToTxnResponse, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	err := a.txns.check(rq, req.TransactionalID)
	switch {
	case err != nil:
	case !a.authorizedGroup(rq.conn, metadata.ACLOpRead, req.Group):
		err = kafkaErrorf(kerr.GroupAuthorizationFailed, "%s may not read group %q", rq.conn.auth.principal, req.Group)
	case metadata.ValidateGroupName(req.Group) != nil:
		err = kafkaErrorf(kerr.InvalidGroupID, "%s", metadata.ValidateGroupName(req.Group))
	default:
		err = a.txns.addGroup(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	}
	if err != nil {
		ke, _ := kafkaError(fencedBefore(err, req.Version, 2))
		resp.ErrorCode = ke.Code
	}
	return resp, nil
}

// addGroup adds a consumer group to a producer's transaction.
func (tc *txnCoordinator) addGroup(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	unlock := tc.lock(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return tc.retry("adding a group to transaction "+id, 5, func() error {
		return tc.addGroupOnce(ctx, id, pid, epoch, group)
	})
}

func (tc *txnCoordinator) addGroupOnce(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	st, err := tc.current(ctx, id, pid, epoch)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	st.AddGroup(group, now)
	st.Updated = now
	_, err = tc.a.store.PutTxn(ctx, st)
	return err
}
