package agent

// InitProducerId, v0–v5.
//
// Idempotent producers get a cluster-unique producer ID at epoch 0.
// Agents reserve IDs from etcd in blocks (metadata.AllocateProducerIDs),
// so most calls do not touch etcd. A producer that asks to bump its epoch
// (KIP-360, v3+, after an error) gets the same ID with the next epoch, or
// a new ID once the epoch would overflow.
//
// With a transactional ID the request goes to the ID's coordinator
// (txn_coordinator.go): the first call stores the ID's record with a new
// producer ID at epoch 0; later ones complete or abort what the previous
// instance left (its abort markers carrying the new epoch, which fences
// it) and bump the epoch, or move to a new producer ID when the epoch
// would overflow. A retry with the producer ID and epoch of before the
// bump (KIP-360) gets the current ones.

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 22, min: 0, max: 5, serve: handleAsync((*Agent).handleInitProducerID)})
}

// producerIDBlock is how many producer IDs an agent reserves at a time.
const producerIDBlock = 1000

// producerIDs hands out producer IDs from reserved blocks, and knows the
// cluster's allocation counter: a producer ID at or above it was never
// handed out by any agent, and is refused.
type producerIDs struct {
	mu   sync.Mutex
	next int64
	end  int64
	// limit is the allocation counter last read (or reserved up to), and
	// checked when it was last read for an ID at or above it.
	limit   int64
	checked time.Time
}

// pidRecheck bounds how often an ID at or above the known counter makes
// the agent read the counter again.
const pidRecheck = 100 * time.Millisecond

// checkProducerID refuses a producer ID no agent ever allocated, with
// UNKNOWN_PRODUCER_ID: the client must get one with InitProducerId.
func (a *Agent) checkProducerID(ctx context.Context, id int64) error {
	p := &a.producerIDs
	p.mu.Lock()
	defer p.mu.Unlock()
	if id < p.limit {
		return nil
	}
	if time.Since(p.checked) >= pidRecheck {
		p.checked = time.Now()
		limit, err := a.store.ProducerIDLimit(ctx)
		if err != nil {
			return err
		}
		p.limit = max(p.limit, limit)
		if id < p.limit {
			return nil
		}
	}
	return kafkaErrorf(kerr.UnknownProducerID, "producer ID %d was never allocated by this cluster; get one with InitProducerId", id)
}

func (a *Agent) handleInitProducerID(ctx context.Context, rq *request, req *kmsg.InitProducerIDRequest) (*kmsg.InitProducerIDResponse, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID = -1
	resp.ProducerEpoch = -1
	if req.TransactionalID != nil {
		pid, epoch, err := a.txns.initProducer(ctx, rq, req)
		if err != nil {
			err = fencedBefore(err, req.Version, 4)
			ke, msg := kafkaError(err)
			resp.ErrorCode = ke.Code
			if ke == kerr.UnknownServerError {
				a.log.Warn("InitProducerId", "transactional_id", *req.TransactionalID, "err", msg)
			}
			return resp, nil
		}
		resp.ProducerID, resp.ProducerEpoch = pid, epoch
		return resp, nil
	}
	if !a.authorizedCluster(rq.conn, metadata.ACLOpIdempotentWrite) && !a.mayWriteAnyTopic(rq.conn) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.Version >= 3 && req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		if err := a.checkProducerID(ctx, req.ProducerID); err != nil {
			ke, _ := kafkaError(err)
			resp.ErrorCode = ke.Code
			return resp, nil
		}
		resp.ProducerID = req.ProducerID
		resp.ProducerEpoch = req.ProducerEpoch + 1
		return resp, nil
	}
	id, err := a.nextProducerID(ctx)
	if err != nil {
		a.log.Warn("allocating producer IDs failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID = id
	resp.ProducerEpoch = 0
	return resp, nil
}

func (a *Agent) nextProducerID(ctx context.Context) (int64, error) {
	p := &a.producerIDs
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.end {
		first, err := a.store.AllocateProducerIDs(ctx, producerIDBlock)
		if err != nil {
			return 0, err
		}
		p.next, p.end = first, first+producerIDBlock
		p.limit = max(p.limit, p.end)
	}
	id := p.next
	p.next++
	return id, nil
}

// initProducer serves InitProducerId for a transactional ID.
func (tc *txnCoordinator) initProducer(ctx context.Context, rq *request, req *kmsg.InitProducerIDRequest) (int64, int16, error) {
	id := *req.TransactionalID
	if err := tc.check(rq, id); err != nil {
		return -1, -1, err
	}
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	if req.TransactionTimeoutMillis <= 0 || timeout > tc.cfg.MaxTimeout {
		return -1, -1, kafkaErrorf(kerr.InvalidTransactionTimeout, "transaction.timeout.ms %d must be positive and at most transaction.max.timeout.ms (%d)", req.TransactionTimeoutMillis, tc.cfg.MaxTimeout.Milliseconds())
	}
	unlock := tc.lock(id)
	defer unlock()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var (
		pid   int64 = -1
		epoch int16 = -1
	)
	err := tc.retry("initializing transactional ID "+id, 5, func() (err error) {
		pid, epoch, err = tc.initOnce(ctx, id, req)
		return err
	})
	return pid, epoch, err
}

func (tc *txnCoordinator) initOnce(ctx context.Context, id string, req *kmsg.InitProducerIDRequest) (int64, int16, error) {
	st, found, err := tc.a.store.GetTxn(ctx, id)
	if err != nil {
		return -1, -1, err
	}
	now := time.Now().UnixMilli()
	if !found {
		pid, err := tc.a.nextProducerID(ctx)
		if err != nil {
			return -1, -1, err
		}
		st = metadata.TxnState{TransactionalID: id, ProducerID: pid, Epoch: 0, LastProducerID: -1, LastEpoch: -1,
			Status: metadata.TxnEmpty, TimeoutMs: req.TransactionTimeoutMillis, Updated: now}
		st, err = tc.a.store.PutTxn(ctx, st)
		return st.ProducerID, st.Epoch, err
	}
	if req.Version >= 3 && req.ProducerID >= 0 {
		switch {
		case req.ProducerID == st.LastProducerID && req.ProducerEpoch == st.LastEpoch && st.Status != metadata.TxnOngoing:
			// A retry of the bump that made the current epoch: an
			// InitProducerId's, or an EndTxn's under transaction version
			// 2 (a client that never heard how its end went). The epoch
			// is the current one once what that bump began is complete,
			// as Kafka answers CONCURRENT_TRANSACTIONS until then.
			if st, err = tc.settle(ctx, st); err != nil {
				return -1, -1, err
			}
			return st.ProducerID, st.Epoch, nil
		case req.ProducerID != st.ProducerID:
			return -1, -1, kafkaErrorf(kerr.InvalidProducerEpoch, "transactional ID %q has producer ID %d, not %d", id, st.ProducerID, req.ProducerID)
		case req.ProducerEpoch != st.Epoch:
			return -1, -1, kafkaErrorf(kerr.ProducerFenced, "producer epoch %d of transactional ID %q was fenced by epoch %d", req.ProducerEpoch, id, st.Epoch)
		}
	}
	if st, err = tc.settle(ctx, st); err != nil {
		return -1, -1, err
	}
	if st.Status == metadata.TxnOngoing {
		// The previous instance left a transaction open: abort it under
		// a new epoch, which fences that instance everywhere it wrote.
		if st, err = tc.prepare(ctx, st, false, true); err != nil {
			return -1, -1, err
		}
		if st, err = tc.complete(ctx, st, false); err != nil {
			return -1, -1, err
		}
		st.TimeoutMs, st.Status, st.Updated = req.TransactionTimeoutMillis, metadata.TxnEmpty, now
		st, err = tc.a.store.PutTxn(ctx, st)
		return st.ProducerID, st.Epoch, err
	}
	next := st
	next.LastProducerID, next.LastEpoch = st.ProducerID, st.Epoch
	if st.Epoch >= math.MaxInt16-1 {
		pid, err := tc.a.nextProducerID(ctx)
		if err != nil {
			return -1, -1, err
		}
		next.ProducerID, next.Epoch = pid, 0
	} else {
		next.Epoch = st.Epoch + 1
	}
	next.Status, next.TimeoutMs, next.Updated = metadata.TxnEmpty, req.TransactionTimeoutMillis, now
	next.Partitions, next.Groups, next.Offsets, next.Started = nil, nil, nil, 0
	next, err = tc.a.store.PutTxn(ctx, next)
	return next.ProducerID, next.Epoch, err
}
