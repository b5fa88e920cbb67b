package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the exporter's (floe_exporter_*).
type metrics struct {
	leading       prometheus.Gauge
	commits       *prometheus.CounterVec
	commitSeconds prometheus.Histogram
	rows          *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	deadLetters   *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	lagRecords    *prometheus.GaugeVec
	lagSeconds    *prometheus.GaugeVec
	// compactions count table compactions by result; compactedFiles the
	// small files they replaced.
	compactions    *prometheus.CounterVec
	compactedFiles prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	byTopic := []string{"topic"}
	m := &metrics{
		leading: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "exporter", Name: "leading",
			Help: "1 while this exporter leads (one exports at a time)."}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "commits_total",
			Help: "Table commits, by result (ok, failed)."}, []string{"result"}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "exporter", Name: "commit_duration_seconds",
			Help: "Time to read, write and commit one export of a topic.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "rows_total",
			Help: "Rows written to tables, by topic."}, byTopic),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "bytes_total",
			Help: "Bytes of data files written to tables, by topic."}, byTopic),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "dead_letters_total",
			Help: "Records whose values did not match their topic's schema (written with _dead_letter set), by topic."}, byTopic),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "skipped_records_total",
			Help: "Offsets retention removed before they were exported, by topic."}, byTopic),
		lagRecords: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "exporter", Name: "lag_records",
			Help: "Committed records (below the last stable offsets) not yet in the topic's table, as of its last export."}, byTopic),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "exporter", Name: "lag_seconds",
			Help: "Seconds since the topic's table last took its records, while some wait; 0 when none do."}, byTopic),
		compactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "compactions_total",
			Help: "Rewrites of tables' small files, by result (ok, failed)."}, []string{"result"}),
		compactedFiles: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "exporter", Name: "compacted_files_total",
			Help: "Small data files compactions replaced."}),
	}
	if reg != nil {
		reg.MustRegister(m.leading, m.commits, m.commitSeconds, m.rows, m.bytes, m.deadLetters, m.skipped, m.lagRecords, m.lagSeconds, m.compactions, m.compactedFiles)
	}
	return m
}

// lag sets a topic's lag after an export.
func (m *metrics) lag(topic string, records int64, lastCommit time.Time) {
	m.lagRecords.WithLabelValues(topic).Set(float64(records))
	secs := 0.0
	if records > 0 && !lastCommit.IsZero() {
		secs = time.Since(lastCommit).Seconds()
	}
	m.lagSeconds.WithLabelValues(topic).Set(secs)
}

// forget drops a topic's series.
func (m *metrics) forget(topic string) {
	for _, v := range []*prometheus.CounterVec{m.rows, m.bytes, m.deadLetters, m.skipped} {
		v.DeleteLabelValues(topic)
	}
	m.lagRecords.DeleteLabelValues(topic)
	m.lagSeconds.DeleteLabelValues(topic)
}
