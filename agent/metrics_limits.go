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

// registerBufPoolMetric registers a buffer pool's gauges,
// floe_agent_<name>_idle_bytes and floe_agent_<name>_used_bytes.
func registerBufPoolMetric(reg prometheus.Registerer, p *bufPool, name, idleHelp, usedHelp string) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: name + "_idle_bytes", Help: idleHelp},
		func() float64 { return float64(p.idleBytes()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "floe", Subsystem: "agent", Name: name + "_used_bytes", Help: usedHelp},
		func() float64 { return float64(p.usedBytes()) }))
}
