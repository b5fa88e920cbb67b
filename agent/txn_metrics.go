package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type txnMetrics struct {
	open     prometheus.Gauge
	oldest   prometheus.Gauge
	ends     *prometheus.CounterVec
	duration prometheus.Histogram
	timeouts prometheus.Counter
	markers  prometheus.Counter
}

func newTxnMetrics(reg prometheus.Registerer) *txnMetrics {
	m := &txnMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transactions_open",
			Help: "Ongoing transactions of the transactional IDs this agent coordinates, as of its last check.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transaction_oldest_open_seconds",
			Help: "Age of the oldest ongoing transaction this agent coordinates, as of its last check.",
		}),
		ends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transactions_ended_total",
			Help: "Transactions this agent ended, by outcome (commit, abort).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transaction_duration_seconds",
			Help:    "Time from a transaction's first partition or group to its end.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 18),
		}),
		timeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transaction_timeouts_total",
			Help: "Transactions this agent aborted because they outlived their transaction.timeout.ms.",
		}),
		markers: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "transaction_markers_total",
			Help: "Transaction markers (control batches) this agent wrote.",
		}),
	}
	m.ends.WithLabelValues("commit")
	m.ends.WithLabelValues("abort")
	if reg != nil {
		reg.MustRegister(m.open, m.oldest, m.ends, m.duration, m.timeouts, m.markers)
	}
	return m
}

func (m *txnMetrics) ended(commit bool, d time.Duration) {
	outcome := "abort"
	if commit {
		outcome = "commit"
	}
	m.ends.WithLabelValues(outcome).Inc()
	m.duration.Observe(d.Seconds())
}
