package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// commitTxnMetrics measure the etcd transactions that commit segments
// (metadata.Committer), implementing metadata.CommitObserver:
//
//	floe_etcd_commit_txn_duration_seconds{outcome}  committed, conflict, failed
//	floe_etcd_commit_conflicts_total                compare-and-swap failures
//
// A conflict means another agent committed one of the partitions (or the
// topic changed) since this agent last saw it; the commit is recomputed
// and retried, so conflicts cost latency, not correctness.
type commitTxnMetrics struct {
	duration  *prometheus.HistogramVec
	conflicts prometheus.Counter
}

func newCommitTxnMetrics(reg prometheus.Registerer) *commitTxnMetrics {
	m := &commitTxnMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "etcd", Name: "commit_txn_duration_seconds",
			Help:    "Latency of the etcd transactions that commit segments, by outcome (committed, conflict, failed).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"outcome"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "etcd", Name: "commit_conflicts_total",
			Help: "Segment commit transactions whose compare failed because another agent committed the partition first; they are retried.",
		}),
	}
	for _, o := range []metadata.TxnOutcome{metadata.TxnCommitted, metadata.TxnConflict, metadata.TxnFailed} {
		m.duration.WithLabelValues(o.String())
	}
	if reg != nil {
		reg.MustRegister(m.duration, m.conflicts)
	}
	return m
}

// ObserveCommitTxn implements metadata.CommitObserver.
func (m *commitTxnMetrics) ObserveCommitTxn(d time.Duration, outcome metadata.TxnOutcome) {
	m.duration.WithLabelValues(outcome.String()).Observe(d.Seconds())
	if outcome == metadata.TxnConflict {
		m.conflicts.Inc()
	}
}

// registerCommitterMetrics exposes what the committer holds and writes:
// the producer state it keeps in memory, and the etcd bytes its log
// entries take (the scaling model's bytes per flush).
func registerCommitterMetrics(reg prometheus.Registerer, c *metadata.Committer) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "commit", Name: "shards",
			Help: "Shards whose state (high watermarks, producers) the agent's committer holds."},
			func() float64 { return float64(c.Stats().Shards) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "commit", Name: "producers",
			Help: "Idempotent producers (per partition) whose state the agent's committer holds."},
			func() float64 { return float64(c.Stats().Producers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "floe", Subsystem: "commit", Name: "log_entries_total",
			Help: "Shard log entries the agent committed (one per shard per flush, or more when a shard's share is split)."},
			func() float64 { return float64(c.Stats().Entries) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "floe", Subsystem: "commit", Name: "log_entry_bytes_total",
			Help: "Bytes of the shard log entries the agent committed to etcd."},
			func() float64 { return float64(c.Stats().EntryBytes) }),
	)
}
