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

type readerMetrics struct {
	cacheHits      prometheus.Counter
	cacheMisses    prometheus.Counter
	cacheCoalesced prometheus.Counter
	cacheBytes     prometheus.Gauge
	getLatency     prometheus.Histogram
	getBytes       prometheus.Counter
	indexLoads     prometheus.Counter
	indexLatency   prometheus.Histogram
	fetchBytes     prometheus.Counter
	prefetches     prometheus.Counter
	prefetchWasted prometheus.Counter
	chunkHits      prometheus.Counter
	chunkMisses    prometheus.Counter
	chunkBytes     prometheus.Gauge
	indexBytes     prometheus.Gauge
}

func newReaderMetrics(reg prometheus.Registerer) *readerMetrics {
	lat := prometheus.ExponentialBuckets(0.0005, 2, 16)
	m := &readerMetrics{
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "cache_hits_total",
			Help: "Fetches of an extent served from the agent's cache."}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "cache_misses_total",
			Help: "Extents read from the object store."}),
		cacheCoalesced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "cache_coalesced_total",
			Help: "Fetches that waited for another fetch's read of the same extent instead of issuing their own."}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "fetch", Name: "cache_bytes",
			Help: "Bytes of decoded batches in the fetch cache."}),
		getLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "fetch", Name: "get_duration_seconds",
			Help: "Latency of ranged GETs of segment objects.", Buckets: lat}),
		getBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "get_bytes_total",
			Help: "Bytes read from the object store by fetches."}),
		indexLoads: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "index_loads_total",
			Help: "Reads of index entries from etcd."}),
		indexLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "floe", Subsystem: "fetch", Name: "index_load_duration_seconds",
			Help: "Latency of loading index entries from etcd.", Buckets: lat}),
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "bytes_total",
			Help: "Bytes of record batches returned to consumers."}),
		prefetches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "prefetches_total",
			Help: "Extents read into the cache ahead of a fetch asking for them (they count as cache misses too)."}),
		prefetchWasted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "prefetches_wasted_total",
			Help: "Extents read ahead that left the cache (or never entered it) before a fetch asked for them."}),
		chunkHits: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "chunk_hits_total",
			Help: "Extent decodes that found their object chunk cached or being read."}),
		chunkMisses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "chunk_reads_total",
			Help: "Object chunks read from the object store (one GET each)."}),
		chunkBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "fetch", Name: "chunk_cache_bytes",
			Help: "Bytes of object chunks, as stored, in the fetch cache."}),
		indexBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "fetch", Name: "index_cache_bytes",
			Help: "Estimated bytes of index windows the agent holds."}),
	}
	if reg != nil {
		reg.MustRegister(m.cacheHits, m.cacheMisses, m.cacheCoalesced, m.cacheBytes, m.getLatency, m.getBytes, m.indexLoads, m.indexLatency, m.fetchBytes, m.prefetches, m.prefetchWasted, m.chunkHits, m.chunkMisses, m.chunkBytes, m.indexBytes)
	}
	return m
}
