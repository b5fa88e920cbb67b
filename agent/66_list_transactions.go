package agent

// ListTransactions, v0–v2.
//
// As in Kafka, each agent lists the transactional IDs it coordinates (the
// agent FindCoordinator names for each), so a client that asks every
// broker and merges the answers (kadm, kafka-transactions.sh list) sees
// each ID once. The list comes from the records in etcd; IDs being
// removed (Dead) are left out, and so are IDs the principal may not
// DESCRIBE. Each comes with its producer ID and state.
//
// Filters, as Kafka applies them: StateFilters (exact names; a name Kafka
// does not know is returned in UnknownStateFilters and matches nothing),
// ProducerIDFilters, DurationFilterMillis (v1+: transactions running for
// longer than that) and TransactionalIDPattern (v2+: an RE2 expression
// the whole ID must match, INVALID_REGULAR_EXPRESSION if it does not
// compile). Unlike Kafka, whose duration filter also lets through IDs
// with no transaction under way (their start time is -1, or that of the
// last transaction), only transactions under way (Ongoing, or between
// Prepare and Complete) pass a duration filter: it is meant to find
// long-running ones.

import (
	"context"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

func init() {
	register(apiSpec{key: 66, min: 0, max: 2, serve: handleAsync((*Agent).handleListTransactions)})
}

// kafkaTxnStates are the transaction states Kafka knows, for state
// filters: floe's, and PrepareEpochFence, which floe never is in.
var kafkaTxnStates = []string{
	string(metadata.TxnEmpty), string(metadata.TxnOngoing),
	string(metadata.TxnPrepareCommit), string(metadata.TxnPrepareAbort),
	string(metadata.TxnCompleteCommit), string(metadata.TxnCompleteAbort),
	string(metadata.TxnDead), "PrepareEpochFence",
}

func (a *Agent) handleListTransactions(ctx context.Context, rq *request, req *kmsg.ListTransactionsRequest) (*kmsg.ListTransactionsResponse, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, s := range req.StateFilters {
		states[s] = true
		if !slices.Contains(kafkaTxnStates, s) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	pids := map[int64]bool{}
	for _, id := range req.ProducerIDFilters {
		pids[id] = true
	}
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		// Compiled alone first, so an expression such as "a)|(b" is refused
		// rather than made valid by the anchoring.
		if _, err = regexp.Compile(*req.TransactionalIDPattern); err == nil {
			pattern, err = regexp.Compile(`^(?:` + *req.TransactionalIDPattern + `)$`)
		}
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	duration := int64(-1)
	if req.Version >= 1 {
		duration = req.DurationFilterMillis
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	txns, bad, err := a.store.ListTxns(ctx)
	if err != nil {
		a.log.Warn("ListTransactions", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	for _, e := range bad {
		a.log.Error("ignoring a transaction record", "err", e)
	}
	now := time.Now().UnixMilli()
	for _, st := range txns {
		switch { // every case but the last leaves the ID out
		case st.Status == metadata.TxnDead:
		case a.txns.coordinatorOf(st.TransactionalID).NodeID != a.NodeID():
		case len(states) > 0 && !states[string(st.Status)]:
		case len(pids) > 0 && !pids[st.ProducerID]:
		case duration >= 0 && (st.Started <= 0 || now-st.Started <= duration):
		case pattern != nil && !pattern.MatchString(st.TransactionalID):
		case !a.authorized(rq.conn, metadata.ACLOpDescribe, metadata.ACLResourceTransactionalID, st.TransactionalID):
		default:
			ls := kmsg.NewListTransactionsResponseTransactionState()
			ls.TransactionalID = st.TransactionalID
			ls.ProducerID = st.ProducerID
			ls.TransactionState = string(st.Status)
			resp.TransactionStates = append(resp.TransactionStates, ls)
		}
	}
	return resp, nil
}
