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
}

type groupMetrics struct {
	groups     *prometheus.GaugeVec
	rebalances prometheus.Counter
	duration   prometheus.Histogram
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
	}
	for _, s := range groupStates {
		m.groups.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(m.groups, m.rebalances, m.duration)
	}
	return m
}
