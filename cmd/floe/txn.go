package main

// floe txn: the transactions of any Kafka-compatible cluster, as
// kafka-transactions.sh shows them (list, describe, describe-producers),
// through ListTransactions, DescribeTransactions and DescribeProducers
// (KIP-664). Listing asks every broker, each of which lists the
// transactional IDs it coordinates, and merges the answers.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newTxnCmd() *cobra.Command {
	var cf clientFlags
	cmd := clientCommand(&cobra.Command{
		Use:   "txn",
		Short: "List and describe transactions, and the producers of partitions",
		Long: `Inspect the transactions of any Kafka-compatible cluster, as
kafka-transactions.sh does.

  floe txn list
  floe txn list --state Ongoing --min-duration 5m    (open for over 5 minutes)
  floe txn describe orders-tx
  floe txn producers orders 0 1                       (find hanging transactions)

Every subcommand prints a table, or JSON with -o json.`,
		RunE: parentRunE,
	})
	cf.register(cmd.PersistentFlags())
	cmd.AddCommand(
		newTxnListCmd(&cf),
		newTxnDescribeCmd(&cf),
		newTxnProducersCmd(&cf),
	)
	return cmd
}

// txnStates are Kafka's transaction states, for --state.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// txnSummary is a transactional ID in `floe txn list -o json`.
type txnSummary struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
}

func newTxnListCmd(cf *clientFlags) *cobra.Command {
	var (
		states      []string
		producerIDs []int64
		minDuration time.Duration
		pattern     string
		output      string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List transactional IDs with their producer and state",
		Long: `List the transactional IDs of the cluster, with the broker coordinating
each, its producer ID and the state of its transaction (Kafka's names:
Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit,
CompleteAbort). Every broker is asked for the IDs it coordinates; those
the principal may not DESCRIBE are left out.

--min-duration needs brokers that filter by duration (ListTransactions
v1: Kafka 3.8+, floe) and --pattern ones that filter by ID (v2: Kafka
4.1+, floe); against older ones the command fails rather than list
unfiltered.

JSON output: {"transactions": [{"transactional_id", "coordinator",
"producer_id", "state"}]}, sorted by transactional ID.`,
		Args: argsRange(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			req := kmsg.NewPtrListTransactionsRequest()
			for _, s := range states {
				i := slices.IndexFunc(txnStates, func(k string) bool { return strings.EqualFold(k, s) })
				if i < 0 {
					return usageError(cmd, "--state %q: use %s", s, strings.Join(txnStates, ", "))
				}
				req.StateFilters = append(req.StateFilters, txnStates[i])
			}
			req.ProducerIDFilters = producerIDs
			minVersion := int16(0)
			if cmd.Flags().Changed("min-duration") {
				if minDuration < 0 {
					return usageError(cmd, "--min-duration %v is negative", minDuration)
				}
				req.DurationFilterMillis = minDuration.Milliseconds()
				minVersion = 1
			}
			if pattern != "" {
				req.TransactionalIDPattern = &pattern
				minVersion = 2
			}
			ctx := cmd.Context()
			cl, err := cf.client(ctx)
			if err != nil {
				return err
			}
			defer cl.Close()
			listed, asked, fails := listTransactions(ctx, cl, req, minVersion)
			res := struct {
				Transactions []txnSummary `json:"transactions"`
			}{Transactions: listed}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
				return fails.err(cmd, asked, "brokers")
			}
			t := newTable(cmd.OutOrStdout(), "TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE")
			for _, l := range listed {
				t.row(l.TransactionalID, l.Coordinator, l.ProducerID, l.State)
			}
			if err := t.flush(); err != nil {
				return err
			}
			return fails.err(cmd, asked, "brokers")
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only transactions in these states (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort; comma-separated or repeated)")
	cmd.Flags().Int64SliceVar(&producerIDs, "producer-id", nil, "only these producer IDs (comma-separated or repeated)")
	cmd.Flags().DurationVar(&minDuration, "min-duration", 0, "only transactions under way for longer than this (e.g. 5m)")
	cmd.Flags().StringVar(&pattern, "pattern", "", "only transactional IDs wholly matching this regular expression (RE2, e.g. 'orders-.*')")
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

// listTransactions asks every broker for the transactional IDs it
// coordinates and merges the answers, sorted by ID, with how many brokers
// were asked. A broker that fails, or that speaks a ListTransactions
// older than minVersion (so would not apply the filters that need it), is
// a failure; what the others listed is still returned.
func listTransactions(ctx context.Context, cl *kgo.Client, req *kmsg.ListTransactionsRequest, minVersion int16) ([]txnSummary, int, failures) {
	needs := map[int16]string{1: "filter by duration (Kafka 3.8+ can)", 2: "filter by transactional ID (Kafka 4.1+ can)"}
	var fails failures
	byID := map[string]txnSummary{}
	shards := cl.RequestSharded(ctx, req)
	for _, shard := range shards {
		subject := fmt.Sprintf("listing transactions at broker %d", shard.Meta.NodeID)
		if shard.Err != nil {
			fails = append(fails, explain(subject, shard.Err, ""))
			continue
		}
		resp := shard.Resp.(*kmsg.ListTransactionsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			fails = append(fails, explain(subject, err, ""))
			continue
		}
		if resp.Version < minVersion {
			fails = append(fails, fmt.Errorf("%s: it speaks ListTransactions v%d, which cannot %s", subject, resp.Version, needs[minVersion]))
			continue
		}
		for _, ts := range resp.TransactionStates {
			byID[ts.TransactionalID] = txnSummary{TransactionalID: ts.TransactionalID, Coordinator: shard.Meta.NodeID, ProducerID: ts.ProducerID, State: ts.TransactionState}
		}
	}
	out := []txnSummary{}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out, len(shards), fails
}

// txnReport is a transactional ID in `floe txn describe -o json`: what
// kafka-transactions.sh describe prints.
type txnReport struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	ProducerID      int64  `json:"producer_id"`
	ProducerEpoch   int16  `json:"producer_epoch"`
	State           string `json:"state"`
	TimeoutMs       int32  `json:"timeout_ms"`
	// StartTimeMs and DurationMs are the transaction under way's (Unix
	// ms, and how long it has run); null when none is.
	StartTimeMs *int64          `json:"start_time_ms"`
	DurationMs  *int64          `json:"duration_ms"`
	Partitions  []txnPartitions `json:"partitions"`
}

type txnPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

func newTxnReport(d kadm.DescribedTransaction, now time.Time) txnReport {
	r := txnReport{
		TransactionalID: d.TxnID, Coordinator: d.Coordinator, ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch,
		State: d.State, TimeoutMs: d.TimeoutMillis, Partitions: []txnPartitions{},
	}
	if d.StartTimestamp >= 0 {
		r.StartTimeMs = int64p(d.StartTimestamp)
		r.DurationMs = int64p(max(now.UnixMilli()-d.StartTimestamp, 0))
	}
	for _, topic := range slices.Sorted(maps.Keys(d.Topics)) {
		r.Partitions = append(r.Partitions, txnPartitions{Topic: topic, Partitions: slices.Sorted(maps.Keys(d.Topics[topic]))})
	}
	return r
}

func newTxnDescribeCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe TRANSACTIONAL-ID...",
		Short: "Show a transactional ID's producer, state and open transaction",
		Long: `Show, for each transactional ID, what kafka-transactions.sh describe
shows: the coordinating broker, the producer ID and epoch, the state, the
transaction timeout, when the transaction under way started and for how
long it has run (- when none is), and its partitions.

JSON output: {"transactions": [{"transactional_id", "coordinator",
"producer_id", "producer_epoch", "state", "timeout_ms", "start_time_ms",
"duration_ms", "partitions": [{"topic", "partitions"}]}]}, sorted by
transactional ID; start_time_ms and duration_ms are null when no
transaction is under way. IDs that do not exist are failures.`,
		Args: argsRange(1, -1, "TRANSACTIONAL-ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			ids := slices.Compact(slices.Sorted(slices.Values(args)))
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			described, err := adm.DescribeTransactions(ctx, ids...)
			if err != nil && len(described) == 0 {
				return explain("describing transactions", err, "")
			}
			now := time.Now()
			var fails failures
			reports := []txnReport{}
			for _, id := range ids {
				subject := fmt.Sprintf("transactional ID %q", id)
				d, ok := described[id]
				switch {
				case !ok && err != nil:
					fails = append(fails, explain(subject, err, ""))
				case !ok:
					fails = append(fails, fmt.Errorf("%s: no answer from the cluster", subject))
				case d.Err != nil:
					fails = append(fails, explain(subject, d.Err, ""))
				default:
					reports = append(reports, newTxnReport(d, now))
				}
			}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), struct {
					Transactions []txnReport `json:"transactions"`
				}{reports}); err != nil {
					return err
				}
				return fails.err(cmd, len(ids), "transactional IDs")
			}
			if len(reports) > 0 {
				if err := printTxnReports(cmd.OutOrStdout(), reports); err != nil {
					return err
				}
			}
			return fails.err(cmd, len(ids), "transactional IDs")
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func printTxnReports(w io.Writer, reports []txnReport) error {
	t := newTable(w, "COORDINATOR", "TRANSACTIONAL-ID", "PRODUCER-ID", "EPOCH", "STATE", "TIMEOUT-MS", "START-TIME-MS", "DURATION-MS", "PARTITIONS")
	for _, r := range reports {
		var parts []string
		for _, p := range r.Partitions {
			parts = append(parts, p.Topic+":"+joinInt32(p.Partitions))
		}
		partitions := strings.Join(parts, " ")
		if partitions == "" {
			partitions = "-"
		}
		t.row(r.Coordinator, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.State, r.TimeoutMs, r.StartTimeMs, r.DurationMs, partitions)
	}
	return t.flush()
}

// producersReport is a partition in `floe txn producers -o json`.
type producersReport struct {
	Partition int32            `json:"partition"`
	Leader    int32            `json:"leader"`
	Producers []producerReport `json:"producers"`
	Error     string           `json:"error,omitempty"`
}

// producerReport is what kafka-transactions.sh describe-producers prints
// of a producer.
type producerReport struct {
	ProducerID       int64 `json:"producer_id"`
	ProducerEpoch    int16 `json:"producer_epoch"`
	CoordinatorEpoch int32 `json:"coordinator_epoch"`
	LastSequence     int32 `json:"last_sequence"`
	LastTimestamp    int64 `json:"last_timestamp"`
	// CurrentTxnStartOffset is the first offset of the producer's open
	// transaction on the partition; null when it has none.
	CurrentTxnStartOffset *int64 `json:"current_txn_start_offset"`
}

func newTxnProducersCmd(cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "producers TOPIC [PARTITION...]",
		Short: "Show the producers a topic's partitions remember, and their open transactions",
		Long: `Show, per partition (all of the topic's unless some are named), the
idempotent and transactional producers its leader remembers, as
kafka-transactions.sh describe-producers does: producer ID and epoch, the
coordinator epoch of its last marker, its last sequence and the time of
its last write (Unix ms), and the first offset of its open transaction
there (- when none). A transaction open for long holds read_committed
consumers back: describe its producer with floe txn list --producer-id.

JSON output: {"topic", "partitions": [{"partition", "leader",
"producers": [{"producer_id", "producer_epoch", "coordinator_epoch",
"last_sequence", "last_timestamp", "current_txn_start_offset"}],
"error"}]}; current_txn_start_offset is null with no transaction open.`,
		Args: argsRange(1, -1, "TOPIC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, err := outputFormat(cmd, output)
			if err != nil {
				return err
			}
			topic := args[0]
			var partitions []int32
			for _, a := range args[1:] {
				p, err := strconv.ParseInt(a, 10, 32)
				if err != nil || p < 0 {
					return usageError(cmd, "partition %q is not a partition number", a)
				}
				partitions = append(partitions, int32(p))
			}
			partitions = slices.Compact(slices.Sorted(slices.Values(partitions)))
			ctx := cmd.Context()
			adm, err := cf.admin(ctx)
			if err != nil {
				return err
			}
			defer adm.Close()
			topics, err := adm.ListTopics(ctx, topic)
			if err != nil {
				return explain(fmt.Sprintf("topic %q", topic), err, "")
			}
			td, ok := topics[topic]
			if !ok {
				return explain(fmt.Sprintf("topic %q", topic), kerr.UnknownTopicOrPartition, "")
			}
			if td.Err != nil {
				return explain(fmt.Sprintf("topic %q", topic), td.Err, "")
			}
			n := int32(len(td.Partitions))
			if len(partitions) == 0 {
				for p := range n {
					partitions = append(partitions, p)
				}
			}
			for _, p := range partitions {
				if p >= n {
					return fmt.Errorf("topic %q has no partition %d: it has %s (0-%d)", topic, p, plural(int(n), "partition"), n-1)
				}
			}
			described, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: setOf(partitions)})
			if err != nil && len(described) == 0 {
				return explain(fmt.Sprintf("describing the producers of %q", topic), err, "")
			}
			var fails failures
			res := struct {
				Topic      string            `json:"topic"`
				Partitions []producersReport `json:"partitions"`
			}{Topic: topic, Partitions: []producersReport{}}
			for _, p := range partitions {
				subject := fmt.Sprintf("partition %s/%d", topic, p)
				r := producersReport{Partition: p, Leader: -1, Producers: []producerReport{}}
				dp, ok := described[topic].Partitions[p]
				switch {
				case !ok && err != nil:
					r.Error = fails.add(explain(subject, err, ""))
				case !ok:
					r.Error = fails.add(fmt.Errorf("%s: no answer from the cluster", subject))
				case dp.Err != nil:
					r.Leader = dp.Leader
					r.Error = fails.add(explain(subject, dp.Err, dp.ErrMessage))
				default:
					r.Leader = dp.Leader
					for _, d := range dp.ActiveProducers.Sorted() {
						pr := producerReport{
							ProducerID: d.ProducerID, ProducerEpoch: d.ProducerEpoch, CoordinatorEpoch: d.CoordinatorEpoch,
							LastSequence: d.LastSequence, LastTimestamp: d.LastTimestamp,
						}
						if d.CurrentTxnStartOffset >= 0 {
							pr.CurrentTxnStartOffset = int64p(d.CurrentTxnStartOffset)
						}
						r.Producers = append(r.Producers, pr)
					}
				}
				res.Partitions = append(res.Partitions, r)
			}
			if out == outputJSON {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
				return fails.err(cmd, len(partitions), "partitions")
			}
			t := newTable(cmd.OutOrStdout(), "PARTITION", "PRODUCER-ID", "EPOCH", "COORDINATOR-EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP", "TXN-START-OFFSET")
			for _, r := range res.Partitions {
				for _, pr := range r.Producers {
					t.row(r.Partition, pr.ProducerID, pr.ProducerEpoch, pr.CoordinatorEpoch, pr.LastSequence, pr.LastTimestamp, pr.CurrentTxnStartOffset)
				}
			}
			if err := t.flush(); err != nil {
				return err
			}
			return fails.err(cmd, len(partitions), "partitions")
		},
	}
	addOutputFlag(cmd.Flags(), &output)
	return cmd
}

func setOf(ps []int32) map[int32]struct{} {
	m := make(map[int32]struct{}, len(ps))
	for _, p := range ps {
		m[p] = struct{}{}
	}
	return m
}
