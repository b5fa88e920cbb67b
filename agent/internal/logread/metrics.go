package logread

import "github.com/prometheus/client_golang/prometheus"

// readerMetrics are the fetch path's metrics (floe_fetch_*).
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

	peerReads       *prometheus.CounterVec
	peerReadBytes   prometheus.Counter
	peerServed      prometheus.Counter
	peerServedBytes prometheus.Counter
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
		peerReads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "peer_reads_total",
			Help: "Object ranges this agent asked the zone agent owning them for instead of the bucket: ok, or failed (then read from the bucket)."}, []string{"result"}),
		peerReadBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "peer_read_bytes_total",
			Help: "Bytes of object ranges read from zone peers."}),
		peerServed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "peer_served_total",
			Help: "Object ranges served to zone peers (from the cache, or read from the bucket once for all who asked)."}),
		peerServedBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "floe", Subsystem: "fetch", Name: "peer_served_bytes_total",
			Help: "Bytes of object ranges served to zone peers."}),
	}
	m.peerReads.WithLabelValues("ok")
	m.peerReads.WithLabelValues("failed")
	if reg != nil {
		reg.MustRegister(m.cacheHits, m.cacheMisses, m.cacheCoalesced, m.cacheBytes, m.getLatency, m.getBytes, m.indexLoads, m.indexLatency, m.fetchBytes, m.prefetches, m.prefetchWasted, m.chunkHits, m.chunkMisses, m.chunkBytes, m.indexBytes, m.peerReads, m.peerReadBytes, m.peerServed, m.peerServedBytes)
	}
	return m
}
