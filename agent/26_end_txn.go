package agent

// EndTxn, v0–v5.
//
// Commits or aborts the producer's transaction (txn_coordinator.go): the
// record moves to PrepareCommit or PrepareAbort, a marker goes to every
// partition in it, committed offsets are applied on commit, and the
// record moves to CompleteCommit or CompleteAbort before the answer.
//
// v5+ is transaction version 2 (KIP-890): every end bumps the producer's
// epoch, the markers carry the new one, and the answer returns it (or a
// new producer ID when the epoch would overflow). A retry of an end that
// completed (the same producer and epoch of before the bump, or the same
// outcome under version 1) is answered as it was; an abort of a version 2
// transaction with nothing in it just bumps the epoch.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 26, min: 0, max: 5, serve: handleAsync((*Agent).handleEndTxn)})
}

func (a *Agent) handleEndTxn(ctx context.Context, rq *request, req *kmsg.EndTxnRequest) (*kmsg.EndTxnResponse, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	st, err := a.txns.endTxn(ctx, rq, req)
	if err != nil {
		err = fencedBefore(err, req.Version, 2)
		ke, msg := kafkaError(err)
		resp.ErrorCode = ke.Code
		if ke == kerr.UnknownServerError {
			a.log.Warn("EndTxn", "transactional_id", req.TransactionalID, "err", msg)
		}
		return resp, nil
	}
	if req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = st.ProducerID, st.Epoch
	}
	return resp, nil
}

func (tc *txnCoordinator) endTxn(ctx context.Context, rq *request, req *kmsg.EndTxnRequest) (metadata.TxnState, error) {
	id := req.TransactionalID
	if err := tc.check(rq, id); err != nil {
		return metadata.TxnState{}, err
	}
	unlock := tc.lock(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var st metadata.TxnState
	err := tc.retry("ending transaction "+id, 5, func() (err error) {
		st, err = tc.endOnce(ctx, id, req)
		return err
	})
	return st, err
}

func (tc *txnCoordinator) endOnce(ctx context.Context, id string, req *kmsg.EndTxnRequest) (metadata.TxnState, error) {
	v2 := req.Version >= 5
	st, found, err := tc.a.store.GetTxn(ctx, id)
	if err != nil {
		return st, err
	}
	if !found {
		return st, kafkaErrorf(kerr.InvalidProducerIDMapping, "transactional ID %q has no producer; call InitProducerId", id)
	}
	done := metadata.TxnCompleteAbort
	if req.Commit {
		done = metadata.TxnCompleteCommit
	}
	// A retry of an end that completed.
	if v2 && req.ProducerID == st.LastProducerID && req.ProducerEpoch == st.LastEpoch {
		switch st.Status {
		case done:
			return st, nil
		case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
			if (st.Status == metadata.TxnPrepareCommit) == req.Commit {
				return tc.settle(ctx, st)
			}
		}
		return st, kafkaErrorf(kerr.ProducerFenced, "producer epoch %d of transactional ID %q was fenced by epoch %d", req.ProducerEpoch, id, st.Epoch)
	}
	if err := producerMatches(st, req.ProducerID, req.ProducerEpoch); err != nil {
		return st, err
	}
	switch st.Status {
	case metadata.TxnOngoing:
	case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
		if (st.Status == metadata.TxnPrepareCommit) != req.Commit {
			return st, kafkaErrorf(kerr.InvalidTxnState, "transaction %q is being ended the other way", id)
		}
		return tc.settle(ctx, st)
	case metadata.TxnCompleteCommit, metadata.TxnCompleteAbort, metadata.TxnEmpty:
		switch {
		case !v2 && st.Status == done:
			return st, nil // version 1 retry of a completed end
		case v2 && !req.Commit:
			// Nothing in the transaction: abort is just an epoch bump.
			if st, err = tc.prepare(ctx, st, false, true); err != nil {
				return st, err
			}
			return tc.complete(ctx, st, false)
		}
		return st, kafkaErrorf(kerr.InvalidTxnState, "transactional ID %q has no transaction in progress (%s)", id, st.Status)
	default:
		return st, kafkaErrorf(kerr.InvalidTxnState, "transactional ID %q is %s", id, st.Status)
	}
	if st, err = tc.prepare(ctx, st, req.Commit, v2); err != nil {
		return st, err
	}
	return tc.complete(ctx, st, req.Commit)
}
