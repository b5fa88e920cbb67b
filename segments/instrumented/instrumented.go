// Package instrumented wraps any segments.Bucket with Prometheus metrics:
// requests by operation and outcome, their latency, bytes moved, and an
// estimate of what the requests cost at S3 request prices.
//
// It is a package of its own so that segments stays free of a metrics
// library; cmd/floe wraps every bucket it opens (agent, compactor, dev).
//
// Metrics (operation is put, get, delete or list):
//
//	floe_objstore_requests_total{operation,outcome}  outcome: ok, not_found, error
//	floe_objstore_request_duration_seconds{operation}
//	floe_objstore_bytes_total{operation}             put: bytes written; get: bytes read
//	floe_objstore_request_cost_usd_total{operation}  estimated request cost
//
// A GET is timed from the request until its body is closed, so the
// duration includes the transfer. The cost estimate counts the requests
// floe makes at Prices (S3 Standard in us-east-1 by default): a PUT, a
// ranged GET, one DeleteObjects call of up to 1000 keys (free: S3 does
// not charge DELETE requests), and one LIST request per 1000 keys listed
// (ListObjectsV2 pages). Retries inside an SDK are not seen, and storage
// and transfer are not included: it is a request-cost estimate, the part
// of the bill that floe's batching controls. The same estimate is made for
// a local directory bucket (what it would cost on S3).
package instrumented

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/segments"
)

// Prices are request prices in US dollars per 1000 requests.
type Prices struct {
	Put, Get, Delete, List float64
}

// S3Standard are S3 Standard's request prices in us-east-1: PUT, COPY,
// POST and LIST $0.005 per 1000, GET $0.0004 per 1000, DELETE free.
var S3Standard = Prices{Put: 0.005, Get: 0.0004, Delete: 0, List: 0.005}

// listPageKeys is how many keys one S3 ListObjectsV2 request returns.
const listPageKeys = 1000

// Operations, as the operation label names them.
const (
	opPut    = "put"
	opGet    = "get"
	opDelete = "delete"
	opList   = "list"
)

// Options tune a wrapped bucket. The zero value uses S3Standard prices.
type Options struct {
	Prices *Prices
}

// Metrics are the collectors of a wrapped bucket. One Metrics may serve
// several buckets of one process.
type Metrics struct {
	prices   Prices
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
	cost     *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (which
// may be nil).
func NewMetrics(reg prometheus.Registerer, opts Options) *Metrics {
	m := &Metrics{
		prices: S3Standard,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "objstore", Name: "requests_total",
			Help: "Object store requests, by operation (put, get, delete, list) and outcome (ok, not_found, error).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "floe", Subsystem: "objstore", Name: "request_duration_seconds",
			Help:    "Latency of object store requests, by operation; a GET until its body is read and closed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"operation"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "objstore", Name: "bytes_total",
			Help: "Bytes written by PUTs and read by GETs.",
		}, []string{"operation"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "floe", Subsystem: "objstore", Name: "request_cost_usd_total",
			Help: "Estimated cost of object store requests in US dollars at S3 Standard request prices (PUT/LIST $0.005, GET $0.0004 per 1000; DELETE free).",
		}, []string{"operation"}),
	}
	if opts.Prices != nil {
		m.prices = *opts.Prices
	}
	for _, op := range []string{opPut, opGet, opDelete, opList} {
		for _, outcome := range []string{"ok", "not_found", "error"} {
			m.requests.WithLabelValues(op, outcome)
		}
		m.duration.WithLabelValues(op)
		m.cost.WithLabelValues(op)
	}
	m.bytes.WithLabelValues(opPut)
	m.bytes.WithLabelValues(opGet)
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.bytes, m.cost)
	}
	return m
}

// Wrap returns b with every request measured into m.
func (m *Metrics) Wrap(b segments.Bucket) segments.Bucket {
	return &bucket{b: b, m: m}
}

// Wrap wraps b with new metrics registered with reg.
func Wrap(b segments.Bucket, reg prometheus.Registerer, opts Options) segments.Bucket {
	return NewMetrics(reg, opts).Wrap(b)
}

// bucket is a measured segments.Bucket.
type bucket struct {
	b segments.Bucket
	m *Metrics
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, segments.ErrNotFound):
		return "not_found"
	}
	return "error"
}

// done records one finished request.
func (m *Metrics) done(op string, start time.Time, err error, requests float64) {
	m.requests.WithLabelValues(op, outcome(err)).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	var price float64
	switch op {
	case opPut:
		price = m.prices.Put
	case opGet:
		price = m.prices.Get
	case opDelete:
		price = m.prices.Delete
	case opList:
		price = m.prices.List
	}
	m.cost.WithLabelValues(op).Add(requests * price / 1000)
}

func (b *bucket) Put(ctx context.Context, key string, data []byte) error {
	start := time.Now()
	err := b.b.Put(ctx, key, data)
	b.m.done(opPut, start, err, 1)
	if err == nil {
		b.m.bytes.WithLabelValues(opPut).Add(float64(len(data)))
	}
	return err
}

func (b *bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	start := time.Now()
	rc, err := b.b.GetRange(ctx, key, offset, length)
	if err != nil {
		b.m.done(opGet, start, err, 1)
		return nil, err
	}
	return &body{rc: rc, m: b.m, start: start}, nil
}

func (b *bucket) Delete(ctx context.Context, keys []string) error {
	start := time.Now()
	err := b.b.Delete(ctx, keys)
	b.m.done(opDelete, start, err, 1)
	return err
}

func (b *bucket) List(ctx context.Context, prefix string, fn func(segments.ObjectInfo) error) error {
	start := time.Now()
	n := 0
	err := b.b.List(ctx, prefix, func(o segments.ObjectInfo) error {
		n++
		return fn(o)
	})
	pages := max(1, (n+listPageKeys-1)/listPageKeys)
	b.m.done(opList, start, err, float64(pages))
	return err
}

func (b *bucket) Close() error { return b.b.Close() }

// body measures a GET until it is closed.
type body struct {
	rc    io.ReadCloser
	m     *Metrics
	start time.Time
	n     int64
	err   error // first read error other than EOF
	done  bool
}

func (r *body) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

func (r *body) Close() error {
	err := r.rc.Close()
	if !r.done {
		r.done = true
		r.m.done(opGet, r.start, r.err, 1)
		r.m.bytes.WithLabelValues(opGet).Add(float64(r.n))
	}
	return err
}
