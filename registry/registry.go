package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/metadata"
)

// contentType is what every response is, as Confluent's registry
// answers. Requests may be sent as it, application/json,
// application/vnd.schemaregistry+json or application/octet-stream (any
// body that is JSON is read).
const contentType = "application/vnd.schemaregistry.v1+json"

// Limits of request bodies: a schema (escaped in JSON, so up to twice
// its size and some) or a small document.
const (
	maxSchemaBody = 2*metadata.MaxSchemaBytes + 64<<10
	maxSmallBody  = 64 << 10
)

// requestTimeout bounds one request's work in etcd.
const requestTimeout = 30 * time.Second

// Options configure a Handler.
type Options struct {
	// Log gets errors of the store (answered 50001). Nil discards them.
	Log *slog.Logger
	// Registerer gets the registry's metrics; nil registers none.
	Registerer prometheus.Registerer
	// Protect, when set, wraps the API's routes (authentication): an
	// error it answers in plain text reaches the client as Confluent's
	// JSON error body, with the status as its error code.
	Protect func(http.Handler) http.Handler
}

// Handler serves the registry's API at the root of its listener.
type Handler struct {
	store   *metadata.Store
	log     *slog.Logger
	inner   http.Handler
	metrics *metrics
}

// New returns the registry's handler over a store.
func New(store *metadata.Store, opts Options) *Handler {
	h := &Handler{store: store, log: opts.Log, metrics: newMetrics(opts.Registerer)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	h.routes(mux)
	h.inner = mux
	if opts.Protect != nil {
		h.inner = opts.Protect(mux)
	}
	return h
}

// ServeHTTP counts the request and makes every error response, the
// router's and the authentication's included, a Confluent error body.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	h.inner.ServeHTTP(rw, r)
	rw.finish()
	h.metrics.observe(r.Pattern, rw.status, time.Since(start))
}

// responseWriter records the status and rewrites plain-text errors
// (written by http.Error outside the registry's own handlers) as JSON.
type responseWriter struct {
	http.ResponseWriter
	status  int
	plain   bool
	message bytes.Buffer
}

func (w *responseWriter) WriteHeader(status int) {
	if w.status != 0 {
		return
	}
	w.status = status
	if status >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), contentType) {
		w.plain = true
		return
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.plain {
		if w.message.Len() < 1024 {
			w.message.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *responseWriter) finish() {
	if !w.plain {
		return
	}
	w.Header().Del("X-Content-Type-Options")
	w.Header().Del("Content-Length")
	msg := strings.TrimSpace(w.message.String())
	if msg == "" {
		msg = http.StatusText(w.status)
	}
	writeJSON(w.ResponseWriter, w.status, errorBody{Code: statusCode(w.status), Message: msg})
}

type errorBody struct {
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		b.Reset()
		b.WriteString(`{"error_code":50001,"message":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// reply writes a 200 response.
func reply(w http.ResponseWriter, v any) { writeJSON(w, http.StatusOK, v) }

// fail writes an error as Confluent's registry would, logging the
// store's errors.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error, at where) {
	ae := toAPIError(err, at)
	if ae.code >= 50000 {
		h.log.Warn("schema registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, ae.status, errorBody{Code: ae.code, Message: ae.message})
}

// readBody decodes a JSON request body of at most limit bytes into v.
// Malformed JSON is 400 and JSON of the wrong shape 422, as Confluent's
// registry answers them; a body over the limit is tooLarge.
func readBody(r *http.Request, limit int64, v any, tooLarge *apiError) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return newAPIError(codeBadRequest, "reading the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return tooLarge
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return newAPIError(codeUnprocessable, "the request has no body")
	}
	if err := json.Unmarshal(b, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return newAPIError(codeUnprocessable, "Unrecognized field or wrong type in the request: %v", err)
		}
		return newAPIError(codeBadRequest, "Malformed JSON in the request: %v", err)
	}
	return nil
}

// metrics count requests by route and status.
type metrics struct {
	requests *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "floe_schema_registry_requests_total",
			Help: "Schema registry requests by route (the API path pattern; \"none\" for paths it does not serve) and HTTP status.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "floe_schema_registry_request_duration_seconds",
			Help:    "How long schema registry requests take.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration)
	}
	return m
}

func (m *metrics) observe(pattern string, status int, d time.Duration) {
	if pattern == "" {
		pattern = "none"
	}
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(pattern, strconv.Itoa(status)).Inc()
	m.duration.Observe(d.Seconds())
}
