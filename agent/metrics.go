package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type metrics struct {
	connections    prometheus.Gauge
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	protocolErrors prometheus.Counter
	// connectionsRefused counts connections closed at once for
	// --max-connections-per-ip.
	connectionsRefused prometheus.Counter
	// topicScans counts listings of every topic for topic IDs the view
	// did not know.
	topicScans      prometheus.Counter
	authentications *prometheus.CounterVec
	// clientBytes counts Kafka bytes to and from clients, by the client's
	// zone (zones.go).
	clientBytes *prometheus.CounterVec
	// forwards count group and transaction requests sent on to a
	// coordinator in another zone (forward.go), and those that failed.
	forwards      prometheus.Counter
	forwardErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "agent", Name: "connections",
			Help: "Open Kafka client connections.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "requests_total",
			Help: "Kafka requests received, by API.",
		}, []string{"api"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "agent", Name: "request_duration_seconds",
			Help:    "Time from receiving a Kafka request to its response being ready, by API.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"api"}),
		protocolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "agent", Name: "protocol_errors_total",
			Help: "Connections closed for malformed, oversized or unsupported requests.",
		}),
	}
	m.connectionsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "connections_refused_total",
		Help: "Connections closed on arrival because their address had --max-connections-per-ip open.",
	})
	m.topicScans = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "topic_id_scans_total",
		Help: "Listings of every topic in etcd for topic IDs the agent's view did not know (at most one a second).",
	})
	m.authentications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "sasl_authentications_total",
		Help: "SASL authentications, by mechanism and result (ok, failed); re-authentications count too.",
	}, []string{"mechanism", "result"})
	m.clientBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "client_bytes_total",
		Help: "Kafka request (in) and response (out) bytes, by kind (data: Produce and Fetch; control: the rest), the agent's zone and the client's (none: the client has none; other: a zone no agent or --zone-cidrs names). Cross-zone bytes are those where the two zones differ.",
	}, []string{"direction", "kind", "agent_zone", "client_zone"})
	m.forwards = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "coordinator_forwards_total",
		Help: "Group and transaction requests of this zone's clients forwarded to their coordinator in another zone.",
	})
	m.forwardErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "coordinator_forward_errors_total",
		Help: "Forwarded requests the coordinator could not be asked (answered here, NOT_COORDINATOR, so the client looks again).",
	})
	if reg != nil {
		reg.MustRegister(m.connections, m.requests, m.latency, m.protocolErrors, m.connectionsRefused, m.topicScans, m.authentications, m.clientBytes, m.forwards, m.forwardErrors)
	}
	return m
}

func (m *metrics) observeLatency(rq *request) {
	if rq.req == nil {
		return
	}
	m.latency.WithLabelValues(kmsg.NameForKey(rq.req.Key())).Observe(time.Since(rq.received).Seconds())
}
