package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// groupStates are the states reported by the groups gauge, so every
// state has a series even at zero.
var groupStates = []string{
	metadata.GroupEmpty,
	metadata.GroupPreparingRebalance,
	metadata.GroupCompletingRebalance,
	metadata.GroupStable,
	metadata.ConsumerGroupAssigning,
	metadata.ConsumerGroupReconciling,
}

type groupMetrics struct {
	groups     *prometheus.GaugeVec
	rebalances prometheus.Counter
	duration   prometheus.Histogram

	// Consumer-protocol (KIP-848) groups.
	epochs            prometheus.Counter
	assignmentSeconds prometheus.Histogram
}

func newGroupMetrics(reg prometheus.Registerer) *groupMetrics {
	m := &groupMetrics{
		groups: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "agent", Name: "groups",
			Help: "Consumer groups this agent coordinates, by state.",
		}, []string{"state"}),
		rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "group_rebalances_total",
			Help: "Consumer group rebalances started on this agent.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "agent", Name: "group_rebalance_duration_seconds",
			Help:    "Time from a group starting to rebalance to it being stable (or empty) again.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		epochs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "consumer_group_epochs_total",
			Help: "New group epochs (membership, subscription or topic changes) of consumer-protocol groups this agent coordinated.",
		}),
		assignmentSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "agent", Name: "consumer_group_assignment_seconds",
			Help:    "Time the server assignor took to compute a consumer-protocol group's target assignment.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
	}
	for _, s := range groupStates {
		m.groups.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.groups, m.rebalances, m.duration, m.epochs, m.assignmentSeconds)
	}
	return m
}
