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
	retentionExtents prometheus.Counter
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
	entries        prometheus.Gauge

	agentsPastGrace prometheus.Gauge

	cleanedPartitions prometheus.Counter
	recordsRemoved    prometheus.Counter
	cleanedBytes      prometheus.Counter
	dirtyRatio        *prometheus.GaugeVec
	dirtyBytes        *prometheus.GaugeVec
	oldestDirty       *prometheus.GaugeVec
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

		retentionEntries: counter("retention_entries_removed_total", "Log entries removed by retention (all their extents expired, by time or bytes, or below a DeleteRecords start)."),
		retentionExtents: counter("retention_extents_removed_total", "Partition extents removed from log entries by retention."),
		retentionBytes:   counter("retention_bytes_removed_total", "Stored bytes of the extents retention removed."),
		behind:           gauge("partitions_behind_retention", "Partitions whose oldest data was past their retention when the last pass looked."),

		mergedEntries:  counter("merged_entries_total", "Log entries replaced by merged entries."),
		mergedBytes:    counter("merged_bytes_total", "Stored bytes of the extents read by merges."),
		objectsWritten: counter("objects_written_total", "Merged objects written (PUTs), each shared by the merged entries of many shards or holding one partition."),
		bytesWritten:   counter("bytes_written_total", "Bytes of merged objects written."),

		objectsDeleted: counter("objects_deleted_total", "Unreferenced objects deleted from the bucket."),
		bytesDeleted:   counter("bytes_deleted_total", "Bytes of the objects deleted."),
		objects:        gauge("bucket_objects", "Segment objects in the bucket when the last pass listed it."),
		unreferenced:   gauge("unreferenced_objects", "Objects referenced by no log entry after the last pass, still within their grace period."),
		entries:        gauge("log_entries", "Shard log entries in etcd when the last pass's garbage collection read them."),

		agentsPastGrace: gauge("agents_commit_delay_past_grace", "Live agents whose --max-commit-delay is not below --gc-grace (their late commits are refused; raise the grace)."),

		cleanedPartitions: counter("cleaned_partitions_total", "Partitions of compacted topics (cleanup.policy=compact) the cleaner rewrote."),
		recordsRemoved:    counter("cleaner_records_removed_total", "Records the cleaner removed: superseded by a later record of their key, tombstones past delete.retention.ms, records without a key."),
		cleanedBytes:      counter("cleaner_bytes_read_total", "Stored bytes of the extents the cleaner rewrote."),
		dirtyRatio: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "compactor", Name: "cleaner_dirty_ratio",
			Help: "Of a compacted partition's cleanable bytes, the share not cleaned yet, when the last pass looked.",
		}, []string{"topic", "partition"}),
		dirtyBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "compactor", Name: "cleaner_dirty_bytes",
			Help: "Stored bytes of a compacted partition not cleaned yet, when the last pass looked.",
		}, []string{"topic", "partition"}),
		oldestDirty: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "floe", Subsystem: "compactor", Name: "cleaner_oldest_dirty_seconds",
			Help: "Age of the oldest record of a compacted partition not cleaned yet, when the last pass looked (0: none).",
		}, []string{"topic", "partition"}),
	}
	for _, stage := range []string{"election", "list", "retention", "merge", "clean", "gc"} {
		m.errors.WithLabelValues(stage)
	}
	if reg != nil {
		reg.MustRegister(m.leader, m.passes, m.passDuration, m.errors,
			m.retentionEntries, m.retentionExtents, m.retentionBytes, m.behind,
			m.mergedEntries, m.mergedBytes, m.objectsWritten, m.bytesWritten,
			m.objectsDeleted, m.bytesDeleted, m.objects, m.unreferenced, m.entries, m.agentsPastGrace,
			m.cleanedPartitions, m.recordsRemoved, m.cleanedBytes, m.dirtyRatio, m.dirtyBytes, m.oldestDirty)
	}
	return m
}
