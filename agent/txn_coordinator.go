package agent

// The transaction coordinator.
//
// Each transactional ID has one record in etcd (metadata.TxnState): its
// producer ID and epoch, the state of its transaction, the partitions and
// groups in it and the offsets committed through it. Every change is a
// compare-and-swap on that record, so any agent may act for any ID and an
// agent's death loses nothing; FindCoordinator names the agent that
// placement (metadata.TxnKey) picks, which serializes an ID's requests in
// one process so they rarely conflict.
//
// Ending a transaction takes three steps, each durable before the next:
// the record moves to PrepareCommit or PrepareAbort; a marker (a control
// batch) is appended to every partition in it through the agent's writer,
// and on commit the pending offsets become the groups' committed offsets;
// the record moves to CompleteCommit or CompleteAbort. A coordinator that
// dies between them leaves a Prepare record, which the next request for
// the ID, or the coordinator's periodic check, completes: markers and
// offsets are written again, which changes nothing a second time.
//
// Fencing. A new producer instance (InitProducerId) bumps the epoch, and
// the abort of what its predecessor left open carries the bumped epoch, so
// the partitions refuse the old epoch from then on. Under transaction
// version 2 (EndTxn v5+) every end bumps the epoch, and its markers carry
// the new one: a produce of the ended transaction that arrives late is
// refused at commit, never added to the next transaction. Produce checks
// transactional batches against the record (producer, epoch, partition in
// the transaction, or added there under version 2).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

type txnCoordinator struct {
	a   *Agent
	cfg TxnConfig
	log *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	locks map[string]*txnLock

	metrics *txnMetrics
}

type txnLock struct {
	mu   sync.Mutex
	refs int
}

func (a *Agent) startTxns() {
	tc := &txnCoordinator{
		a: a, cfg: a.cfg.Txns, log: a.log.With("component", "transactions"),
		locks:   map[string]*txnLock{},
		metrics: newTxnMetrics(a.registry),
	}
	tc.ctx, tc.cancel = context.WithCancel(a.ctx)
	a.txns = tc
	tc.wg.Add(1)
	go func() {
		defer tc.wg.Done()
		tc.run()
	}()
}

func (a *Agent) stopTxns() {
	if a.txns != nil {
		a.txns.cancel()
		a.txns.wg.Wait()
	}
}

// lock serializes this agent's work on one transactional ID.
func (tc *txnCoordinator) lock(id string) func() {
	tc.mu.Lock()
	l := tc.locks[id]
	if l == nil {
		l = &txnLock{}
		tc.locks[id] = l
	}
	l.refs++
	tc.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		tc.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(tc.locks, id)
		}
		tc.mu.Unlock()
	}
}

// coordinatorOf returns the agent that coordinates a transactional ID.
func (tc *txnCoordinator) coordinatorOf(id string) metadata.AgentInfo {
	leader, _ := metadata.Leader(tc.a.liveAgents(), metadata.TxnKey(id))
	return leader
}

// check refuses an ID that cannot be stored, one this agent does not
// coordinate, and a principal without Write on it.
func (tc *txnCoordinator) check(rq *request, id string) error {
	if err := metadata.ValidateTransactionalID(id); err != nil {
		return kafkaErrorf(kerr.InvalidRequest, "%s", err)
	}
	if rq != nil && !tc.a.authorized(rq.conn, metadata.ACLOpWrite, metadata.ACLResourceTransactionalID, id) {
		return kafkaErrorf(kerr.TransactionalIDAuthorizationFailed, "%s may not use transactional ID %q", rq.conn.auth.principal, id)
	}
	if c := tc.coordinatorOf(id); c.NodeID != tc.a.NodeID() {
		return kafkaErrorf(kerr.NotCoordinator, "node %d does not coordinate transactional ID %q; node %d does", tc.a.NodeID(), id, c.NodeID)
	}
	return nil
}

// etcdErr turns a failed etcd read or write into the error a client
// retries: a conflict (another agent changed the record) is
// CONCURRENT_TRANSACTIONS, anything else COORDINATOR_NOT_AVAILABLE.
func (tc *txnCoordinator) etcdErr(what string, err error) error {
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	if errors.Is(err, metadata.ErrConflict) {
		return kafkaErrorf(kerr.ConcurrentTransactions, "%s: the transaction changed meanwhile; retry", what)
	}
	tc.log.Warn("transaction state", "what", what, "err", err)
	return kafkaErrorf(kerr.CoordinatorNotAvailable, "%s: %v", what, err)
}

// producerMatches checks that a request's producer ID and epoch are the
// record's current ones.
func producerMatches(st metadata.TxnState, pid int64, epoch int16) error {
	switch {
	case pid != st.ProducerID:
		return kafkaErrorf(kerr.InvalidProducerIDMapping, "transactional ID %q has producer ID %d, not %d", st.TransactionalID, st.ProducerID, pid)
	case epoch < st.Epoch:
		return kafkaErrorf(kerr.ProducerFenced, "producer epoch %d of transactional ID %q was fenced by epoch %d", epoch, st.TransactionalID, st.Epoch)
	case epoch > st.Epoch:
		return kafkaErrorf(kerr.InvalidProducerEpoch, "producer epoch %d of transactional ID %q is newer than its current %d", epoch, st.TransactionalID, st.Epoch)
	}
	return nil
}

// current reads a transactional ID's record for a request of producer
// pid at epoch that changes the transaction: the producer must be the
// record's, and the transaction not being ended.
func (tc *txnCoordinator) current(ctx context.Context, id string, pid int64, epoch int16) (metadata.TxnState, error) {
	st, found, err := tc.a.store.GetTxn(ctx, id)
	if err != nil {
		return st, err
	}
	if !found {
		return st, kafkaErrorf(kerr.InvalidProducerIDMapping, "transactional ID %q has no producer; call InitProducerId", id)
	}
	if err := producerMatches(st, pid, epoch); err != nil {
		return st, err
	}
	switch st.Status {
	case metadata.TxnPrepareCommit, metadata.TxnPrepareAbort:
		return st, kafkaErrorf(kerr.ConcurrentTransactions, "transaction %q is being ended; retry", id)
	case metadata.TxnDead:
		return st, kafkaErrorf(kerr.InvalidTxnState, "transactional ID %q is being removed", id)
	}
	return st, nil
}

// retry runs fn again while it loses a compare-and-swap to another writer
// of the record, at most attempts times, and returns its last error as a
// client sees it.
func (tc *txnCoordinator) retry(what string, attempts int, fn func() error) error {
	var err error
	for range attempts {
		if err = fn(); !errors.Is(err, metadata.ErrConflict) {
			break
		}
	}
	if err != nil {
		return tc.etcdErr(what, err)
	}
	return nil
}

// fencedBefore answers PRODUCER_FENCED as INVALID_PRODUCER_EPOCH to a
// request older than the version that introduced it (Kafka's schemas:
// EndTxn, AddPartitionsToTxn and AddOffsetsToTxn v2, InitProducerId v4),
// as Kafka does.
func fencedBefore(err error, version, since int16) error {
	if version < since {
		return fencedAsEpoch(err)
	}
	return err
}

// fencedAsEpoch answers PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
func fencedAsEpoch(err error) error {
	var ce *codedError
	if errors.As(err, &ce) && ce.code == kerr.ProducerFenced {
		return kafkaErrorf(kerr.InvalidProducerEpoch, "%s", ce.msg)
	}
	return err
}

// settle completes a transaction left between its Prepare and Complete
// states, and returns the record after.
func (tc *txnCoordinator) settle(ctx context.Context, st metadata.TxnState) (metadata.TxnState, error) {
	switch st.Status {
	case metadata.TxnPrepareCommit:
		return tc.complete(ctx, st, true)
	case metadata.TxnPrepareAbort:
		return tc.complete(ctx, st, false)
	}
	return st, nil
}

// prepare moves an ongoing (or empty) transaction to PrepareCommit or
// PrepareAbort; bump moves the producer to its next epoch in the same
// write (transaction version 2, and fencing).
func (tc *txnCoordinator) prepare(ctx context.Context, st metadata.TxnState, commit, bump bool) (metadata.TxnState, error) {
	next := st
	next.Status = metadata.TxnPrepareAbort
	if commit {
		next.Status = metadata.TxnPrepareCommit
	}
	if bump {
		next.LastProducerID, next.LastEpoch = st.ProducerID, st.Epoch
		if st.Epoch < math.MaxInt16-1 {
			next.Epoch = st.Epoch + 1
		}
	}
	next.Updated = time.Now().UnixMilli()
	return tc.a.store.PutTxn(ctx, next)
}

// complete writes a prepared transaction's markers (and, on commit, its
// offsets) and moves it to CompleteCommit or CompleteAbort, with no
// partitions, groups or offsets.
func (tc *txnCoordinator) complete(ctx context.Context, st metadata.TxnState, commit bool) (metadata.TxnState, error) {
	if err := tc.writeMarkers(ctx, st, commit); err != nil {
		return st, err
	}
	if commit && len(st.Offsets) > 0 {
		// Fenced by the record: a coordinator paused here cannot write
		// these offsets over a later transaction's.
		if err := tc.a.store.CommitPendingOffsets(ctx, st, time.Now(), tc.a.cfg.EtcdMaxTxnOps); err != nil {
			return st, fmt.Errorf("committing the transaction's offsets: %w", err)
		}
	}
	next := st
	next.Status = metadata.TxnCompleteAbort
	if commit {
		next.Status = metadata.TxnCompleteCommit
	}
	if st.Started > 0 {
		tc.metrics.ended(commit, time.Since(time.UnixMilli(st.Started)))
	}
	next.Partitions, next.Groups, next.Offsets, next.Started = nil, nil, nil, 0
	next.Updated = time.Now().UnixMilli()
	done, err := tc.a.store.PutTxn(ctx, next)
	if err == nil && len(st.Groups) > 0 {
		if err := tc.a.store.UnmarkTxnGroups(ctx, st.TransactionalID, st.Groups); err != nil {
			// Only a hint: require_stable readers check the record.
			tc.log.Debug("unmarking a transaction's groups", "transactional_id", st.TransactionalID, "err", err)
		}
	}
	return done, err
}

// writeMarkers appends a marker to every partition in st's transaction,
// with st's producer ID and epoch, and waits until they are committed.
// Partitions of deleted topics are skipped: etcd, not the agent's view of
// the topics, decides that. The view may not have seen a topic created,
// or grown, just before its first transaction, and a marker skipped for
// that left the transaction's records open until the producer's next
// transaction ended, and ended with it.
func (tc *txnCoordinator) writeMarkers(ctx context.Context, st metadata.TxnState, commit bool) error {
	now := time.Now().UnixMilli()
	var results []*markerWrite
	read := map[string]*metadata.Topic{} // topics read from etcd (nil: gone)
	for _, p := range st.Partitions {
		t, ok := tc.a.view.Topic(p.Topic)
		if !ok || t.ID != p.TopicID || p.Partition >= t.Partitions {
			got, seen := read[p.Topic]
			if !seen {
				et, err := tc.a.store.GetTopic(ctx, p.Topic)
				switch {
				case isUnknownTopic(err):
				case err != nil:
					return fmt.Errorf("finding %s for a transaction marker: %w", p.Topic, err)
				default:
					got = &et
				}
				read[p.Topic] = got
			}
			if got == nil || got.ID != p.TopicID || p.Partition >= got.Partitions {
				continue
			}
			t = *got
		}
		raw := segments.AppendControlBatch(nil, st.ProducerID, st.Epoch, commit, 0, now)
		b, err := segments.ParseBatch(raw)
		if err != nil {
			return fmt.Errorf("building a transaction marker: %w", err)
		}
		res, err := tc.a.writer.AppendTxn(ctx, t, p.Partition, []segments.Batch{b}, st.Started)
		if err != nil {
			return fmt.Errorf("writing a transaction marker to %s/%d: %w", p.Topic, p.Partition, err)
		}
		results = append(results, &markerWrite{p: p, res: res})
	}
	for _, m := range results {
		select {
		case <-m.res.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := m.res.Err; err != nil && !errors.Is(err, metadata.ErrUnknownPartition) {
			if errors.Is(err, metadata.ErrInvalidProducerEpoch) {
				// A newer epoch wrote there since: its own markers end
				// what this one would.
				continue
			}
			return fmt.Errorf("writing a transaction marker to %s/%d: %w", m.p.Topic, m.p.Partition, err)
		}
	}
	tc.metrics.markers.Add(float64(len(results)))
	return nil
}

type markerWrite struct {
	p   metadata.TxnPartition
	res *logwrite.Result
}

// run aborts transactions past their timeout, completes those left
// prepared, and removes expired transactional IDs, for the IDs this agent
// coordinates.
func (tc *txnCoordinator) run() {
	ticker := time.NewTicker(tc.cfg.AbortCheckInterval)
	defer ticker.Stop()
	for {
		select {
		case <-tc.ctx.Done():
			return
		case <-ticker.C:
			tc.sweep()
		}
	}
}

func (tc *txnCoordinator) sweep() {
	ctx, cancel := context.WithTimeout(tc.ctx, max(tc.cfg.AbortCheckInterval, 30*time.Second))
	defer cancel()
	txns, bad, err := tc.a.store.ListTxns(ctx)
	if err != nil {
		if tc.ctx.Err() == nil {
			tc.log.Warn("listing transactions failed", "err", err)
		}
		return
	}
	for _, err := range bad {
		tc.log.Error("ignoring a transaction record", "err", err)
	}
	now := time.Now()
	var open int
	var oldest time.Duration
	for _, st := range txns {
		if tc.coordinatorOf(st.TransactionalID).NodeID != tc.a.NodeID() {
			continue
		}
		if st.Status == metadata.TxnOngoing {
			open++
			oldest = max(oldest, now.Sub(time.UnixMilli(st.Started)))
		}
		tc.sweepOne(ctx, st.TransactionalID, now)
	}
	tc.metrics.open.Set(float64(open))
	tc.metrics.oldest.Set(oldest.Seconds())
}

// sweepOne acts on one transactional ID, under its lock, on a fresh read.
func (tc *txnCoordinator) sweepOne(ctx context.Context, id string, now time.Time) {
	unlock := tc.lock(id)
	defer unlock()
	st, ok, err := tc.a.store.GetTxn(ctx, id)
	if err != nil || !ok {
		return
	}
	switch {
	case st.Expired(now.UnixMilli()):
		tc.log.Info("aborting a transaction past its timeout", "transactional_id", id, "producer_id", st.ProducerID, "epoch", st.Epoch, "timeout_ms", st.TimeoutMs)
		st, err = tc.prepare(ctx, st, false, true)
		if err == nil {
			_, err = tc.complete(ctx, st, false)
		}
		if err == nil {
			tc.metrics.timeouts.Inc()
		}
	case st.Status == metadata.TxnPrepareCommit || st.Status == metadata.TxnPrepareAbort:
		if now.Sub(time.UnixMilli(st.Updated)) > tc.cfg.AbortCheckInterval {
			_, err = tc.settle(ctx, st)
		}
	case st.Status != metadata.TxnOngoing && now.Sub(time.UnixMilli(st.Updated)) > tc.cfg.IDExpiration:
		err = tc.a.store.DeleteTxn(ctx, st)
	}
	if err != nil && tc.ctx.Err() == nil && !errors.Is(err, metadata.ErrConflict) {
		tc.log.Warn("transaction sweep", "transactional_id", id, "err", err)
	}
}
