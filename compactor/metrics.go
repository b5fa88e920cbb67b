package compactor

import "github.com/prometheus/client_golang/prometheus"

// metrics are the compactor's Prometheus metrics, namespace floe,
// subsystem compactor.
type metrics struct {
	leader       prometheus.Gauge
	passes       prometheus.Counter
	passDuration prometheus.Histogram
	errors       *prometheus.CounterVec

	retentionEntries prometheus.Counter
	retentionBytes   prometheus.Counter
	behind           prometheus.Gauge

	mergedEntries  prometheus.Counter
	mergedBytes    prometheus.Counter
	objectsWritten prometheus.Counter
	bytesWritten   prometheus.Counter

	objectsDeleted prometheus.Counter
	bytesDeleted   prometheus.Counter
	objects        prometheus.Gauge
	unreferenced   prometheus.Gauge
	indexEntries   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "compactor", Name: name, Help: help})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "compactor", Name: name, Help: help})
	}
	m := &metrics{
		leader: gauge("leader", "1 while this compactor holds the election and acts, else 0."),
		passes: counter("passes_total", "Compaction passes completed."),
		passDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "compactor", Name: "pass_duration_seconds",
			Help:    "Duration of a compaction pass: listing, retention, merging, garbage collection.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "compactor", Name: "errors_total",
			Help: "Failures, by stage (election, list, retention, merge, gc). Each is logged.",
		}, []string{"stage"}),

		retentionEntries: counter("retention_entries_removed_total", "Index entries removed by retention (time, bytes, or below a DeleteRecords start)."),
		retentionBytes:   counter("retention_bytes_removed_total", "Stored bytes of the extents retention removed."),
		behind:           gauge("partitions_behind_retention", "Partitions whose oldest data was past their retention when the last pass looked."),

		mergedEntries:  counter("merged_entries_total", "Index entries replaced by merges."),
		mergedBytes:    counter("merged_bytes_total", "Stored bytes of the extents read by merges."),
		objectsWritten: counter("objects_written_total", "Merged objects written and swapped into the index."),
		bytesWritten:   counter("bytes_written_total", "Bytes of merged objects written."),

		objectsDeleted: counter("objects_deleted_total", "Unreferenced objects deleted from the bucket."),
		bytesDeleted:   counter("bytes_deleted_total", "Bytes of the objects deleted."),
		objects:        gauge("bucket_objects", "Segment objects in the bucket when the last pass listed it."),
		unreferenced:   gauge("unreferenced_objects", "Objects referenced by no index entry after the last pass, still within their grace period."),
		indexEntries:   gauge("index_entries", "Index entries in etcd when the last pass's garbage collection read them."),
	}
	for _, stage := range []string{"election", "list", "retention", "merge", "gc"} {
		m.errors.WithLabelValues(stage)
	}
	if reg != nil {
		reg.MustRegister(m.leader, m.passes, m.passDuration, m.errors,
			m.retentionEntries, m.retentionBytes, m.behind,
			m.mergedEntries, m.mergedBytes, m.objectsWritten, m.bytesWritten,
			m.objectsDeleted, m.bytesDeleted, m.objects, m.unreferenced, m.indexEntries)
	}
	return m
}
