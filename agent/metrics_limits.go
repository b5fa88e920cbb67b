package agent

import "github.com/prometheus/client_golang/prometheus"

// registerLimitMetrics exports the configured bounds next to the gauges
// they bound, so dashboards can show how full the buffers are without
// knowing the flags:
//
//	floe_produce_buffer_limit_bytes  --max-buffer-bytes (vs floe_produce_buffered_bytes)
//	floe_fetch_cache_limit_bytes     --cache-bytes (vs floe_fetch_cache_bytes)
func registerLimitMetrics(reg prometheus.Registerer, cfg Config) {
	if reg == nil {
		return
	}
	buffer := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "produce", Name: "buffer_limit_bytes",
		Help: "Most bytes held in flushes not yet committed (--max-buffer-bytes); producers beyond it wait."})
	cache := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "fetch", Name: "cache_limit_bytes",
		Help: "Memory for the fetch cache of decoded batches (--cache-bytes)."})
	buffer.Set(float64(cfg.Writer.MaxBufferBytes))
	cache.Set(float64(cfg.CacheBytes))
	reg.MustRegister(buffer, cache)
}

// registerRequestMemMetric exports the request bytes being read or
// awaiting an answer (bounded by --queued-max-request-bytes).
func registerRequestMemMetric(reg prometheus.Registerer, b *byteBudget) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: "request_bytes",
		Help: "Bytes of requests being read or awaiting their answer (bounded by --queued-max-request-bytes)."},
		func() float64 { return float64(b.held()) }))
}

func registerResponseBufsMetric(reg prometheus.Registerer, p *bufPool) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: "response_buffers_idle_bytes",
		Help: "Capacity of the idle buffers kept for joining and encoding large fetch responses (with those in use, at most twice the 64 MiB fetch memory budget)."},
		func() float64 { return float64(p.idleBytes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: "response_buffers_used_bytes",
		Help: "Capacity of the buffers large fetch responses are being joined and encoded into."},
		func() float64 { return float64(p.usedBytes()) }))
}

func registerFrameBufsMetric(reg prometheus.Registerer, p *bufPool) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: "request_buffers_idle_bytes",
		Help: "Capacity of the idle buffers kept for reading large requests (produces) into (with those in use, at most 64 MiB)."},
		func() float64 { return float64(p.idleBytes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: "request_buffers_used_bytes",
		Help: "Capacity of the pooled buffers large requests are held in until they are answered."},
		func() float64 { return float64(p.usedBytes()) }))
}
