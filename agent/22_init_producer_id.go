package agent

// InitProducerId, v0–v5.
//
// Idempotent producers get a cluster-unique producer ID at epoch 0.
// Agents reserve IDs from etcd in blocks (metadata.AllocateProducerIDs),
// so most calls do not touch etcd. A producer that asks to bump its epoch
// (KIP-360, v3+, after an error) gets the same ID with the next epoch, or
// a new ID once the epoch would overflow. Transactional IDs are not
// supported yet and get TRANSACTIONAL_ID_AUTHORIZATION_FAILED with a
// message saying so.

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
	register(apiSpec{key: 22, min: 0, max: 5, serve: handleSync((*Agent).handleInitProducerID)})
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
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
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
