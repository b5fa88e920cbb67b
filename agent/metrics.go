package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type metrics struct {
	connections     prometheus.Gauge
	requests        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	protocolErrors  prometheus.Counter
	authentications *prometheus.CounterVec
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
	m.authentications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "floe", Subsystem: "agent", Name: "sasl_authentications_total",
		Help: "SASL authentications, by mechanism and result (ok, failed); re-authentications count too.",
	}, []string{"mechanism", "result"})
	if reg != nil {
		reg.MustRegister(m.connections, m.requests, m.latency, m.protocolErrors, m.authentications)
	}
	return m
}

func (m *metrics) observeLatency(rq *request) {
	if rq.req == nil {
		return
	}
	m.latency.WithLabelValues(kmsg.NameForKey(rq.req.Key())).Observe(time.Since(rq.received).Seconds())
}

type writerMetrics struct {
	buffered      prometheus.Gauge
	backpressure  prometheus.Counter
	flushBytes    prometheus.Histogram
	flushAge      prometheus.Histogram
	flushLatency  prometheus.Histogram
	putLatency    prometheus.Histogram
	putErrors     prometheus.Counter
	commitLatency prometheus.Histogram
	commitErrors  prometheus.Counter
	produceBytes  prometheus.Counter
	produceRecs   prometheus.Counter
}

func newWriterMetrics(reg prometheus.Registerer) *writerMetrics {
	lat := prometheus.ExponentialBuckets(0.001, 2, 15)
	m := &writerMetrics{
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "produce", Name: "buffered_bytes",
			Help: "Bytes of produced batches held in flushes that are open, uploading or committing."}),
		backpressure: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "produce", Name: "backpressure_waits_total",
			Help: "Times a produce request waited because the flush buffer was full."}),
		flushBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "produce", Name: "segment_bytes",
			Help: "Size of segment objects written.", Buckets: prometheus.ExponentialBuckets(4096, 2, 16)}),
		flushAge: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "produce", Name: "flush_interval_seconds",
			Help: "Time from a flush's first batch to its sealing.", Buckets: lat}),
		flushLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "produce", Name: "flush_duration_seconds",
			Help: "Time from sealing a flush to its commit.", Buckets: lat}),
		putLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "produce", Name: "put_duration_seconds",
			Help: "Latency of segment object PUTs.", Buckets: lat}),
		putErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "produce", Name: "put_errors_total",
			Help: "Failed segment object PUTs (each retry counts)."}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "produce", Name: "commit_duration_seconds",
			Help: "Latency of committing a segment to etcd.", Buckets: lat}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "produce", Name: "commit_errors_total",
			Help: "Segment commits that failed."}),
		produceBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "produce", Name: "bytes_total",
			Help: "Bytes of record batches accepted from producers."}),
		produceRecs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "produce", Name: "records_total",
			Help: "Records accepted from producers."}),
	}
	if reg != nil {
		reg.MustRegister(m.buffered, m.backpressure, m.flushBytes, m.flushAge, m.flushLatency, m.putLatency, m.putErrors, m.commitLatency, m.commitErrors, m.produceBytes, m.produceRecs)
	}
	return m
}
