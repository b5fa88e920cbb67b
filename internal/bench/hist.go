package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSubBits sets the histogram's precision: 2^histSubBits buckets per
// power of two, so a recorded value is off by less than 1%.
const histSubBits = 7

// histBuckets covers 0 to 2^40 µs (about 12 days).
const histBuckets = (40-histSubBits)<<histSubBits + 2<<histSubBits

// Histogram records durations with under 1% error, lock-free, so
// producer callbacks on many goroutines can share one. The zero value is
// ready to use.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // µs
	max    atomic.Uint64 // µs
}

func histIndex(us uint64) int {
	if us < 2<<histSubBits {
		return int(us)
	}
	e := bits.Len64(us) - (histSubBits + 1)
	i := e<<histSubBits + int(us>>e)
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histValue is the middle of bucket i, in µs.
func histValue(i int) uint64 {
	if i < 2<<histSubBits {
		return uint64(i)
	}
	e := i>>histSubBits - 1
	m := uint64(i - e<<histSubBits)
	return m<<e + (uint64(1)<<e)/2
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	us := uint64(0)
	if d > 0 {
		us = uint64(d / time.Microsecond)
	}
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	h.sum.Add(us)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n.Load() }

// Quantile returns the duration below which a fraction q of the recorded
// ones fall; 0 when nothing was recorded.
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return min(time.Duration(histValue(i))*time.Microsecond, h.Max())
		}
	}
	return h.Max()
}

// Max is the largest duration recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max.Load()) * time.Microsecond }

// Mean is the average duration recorded.
func (h *Histogram) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load()/n) * time.Microsecond
}

// Latency summarises a histogram for the report.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summary returns the histogram's percentiles in milliseconds.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P95:   ms(h.Quantile(0.95)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max()),
		Mean:  ms(h.Mean()),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
