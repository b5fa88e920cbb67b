package logwrite

import "github.com/prometheus/client_golang/prometheus"

// metrics are the write path's floe_produce_* metrics.
type metrics struct {
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

// newMetrics creates the metrics and registers them with reg (none when
// reg is nil).
func newMetrics(reg prometheus.Registerer) *metrics {
	lat := prometheus.ExponentialBuckets(0.001, 2, 15)
	m := &metrics{
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
