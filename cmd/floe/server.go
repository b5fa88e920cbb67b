package main

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/registry"
	"github.com/floe-io/floe/segments"
	"github.com/floe-io/floe/segments/instrumented"
)

// agentOptions are the flags shared by `floe agent` and `floe dev`: the
// agent's own (agent.Config.RegisterFlags) and the process's.
type agentOptions struct {
	cfg           agent.Config
	httpAddr      string
	cluster       string
	etcdMaxTxnOps int

	topics          retentionDefaults
	messageMaxBytes int32
	timestampType   string

	listeners           []string
	advertisedListeners []string
	bootstrapUser       string
	authorize           string
	httpAuth            string
	httpTokens          []string
	httpOpen            []string
	httpTLS             bool
	registryAddr        string
	pprof               bool
	memoryLimit         int64
}

func (o *agentOptions) register(fs *pflag.FlagSet, autoCreateDefault bool) {
	o.cfg.AutoCreateTopics = autoCreateDefault
	o.cfg.RegisterFlags(fs)
	registerEtcdMaxTxnOps(fs, &o.etcdMaxTxnOps)
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:9644", "host:port of the HTTP listener (/healthz, /readyz, /metrics, /v1/groups); empty disables it")
	fs.StringVar(&o.cluster, "cluster", "default", "cluster name: the etcd key prefix /floe/<cluster>/, so several clusters can share one etcd")
	o.topics.register(fs)
	fs.Int32Var(&o.messageMaxBytes, "message-max-bytes", 1048588, "default max.message.bytes: the largest record batch accepted (message.max.bytes)")
	fs.StringVar(&o.timestampType, "log-message-timestamp-type", "CreateTime", "default message.timestamp.type: CreateTime or LogAppendTime")
	fs.StringArrayVar(&o.listeners, "listener", nil, "a Kafka listener PROTOCOL://host:port (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); repeat for several. Default: PLAINTEXT on --kafka-addr")
	fs.StringArrayVar(&o.advertisedListeners, "advertised-listener", nil, "PROTOCOL://host:port clients of that listener are told to connect to; repeat per listener")
	fs.StringVar(&o.bootstrapUser, "sasl-bootstrap-user", "", "NAME:PASSWORD of a user to create or update at start (SCRAM-SHA-256 and -512), so a new cluster can be administered")
	fs.StringVar(&o.httpAuth, "http-auth", "auto", "require a bearer token or a SCRAM user on the HTTP listener: auto (when Kafka listeners authenticate), on, or off")
	fs.StringSliceVar(&o.httpTokens, "http-token", nil, "bearer tokens the HTTP listener accepts (prefer FLOE_HTTP_TOKEN)")
	fs.StringSliceVar(&o.httpOpen, "http-open-paths", []string{"/healthz", "/readyz"}, "HTTP paths served without authentication (add /metrics for a scraper without credentials)")
	fs.BoolVar(&o.httpTLS, "http-tls", false, "serve HTTP over TLS with --tls-cert and --tls-key")
	fs.StringVar(&o.authorize, "authorizer", "auto", "enforce ACLs: auto (when any listener authenticates with SASL or client certificates), on, or off")
	fs.Int64Var(&o.memoryLimit, "memory-limit", 0, "soft limit of the process's resident memory (Go's GOMEMLIMIT is set to it less the executable's resident code): near it the Go garbage collector works harder instead of letting the heap grow to twice what is live. 0 picks --max-buffer-bytes + --cache-bytes + 256 MiB + 2 × --max-uploads × --segment-target-bytes + 12 × --read-chunk-bytes; -1 sets none. Under it the collector runs at 1.5 times the live heap (GOGC=50). GOMEMLIMIT and GOGC in the environment win")
	fs.BoolVar(&o.pprof, "pprof", false, "serve Go's profiler (net/http/pprof) under /debug/pprof/ on the HTTP listener, behind the same authentication as /metrics; for benchmarks and diagnosis (floe bench --local turns it on)")
}

// registerSchemaRegistry registers --schema-registry-addr with the
// command's default ("" leaves the registry off).
func (o *agentOptions) registerSchemaRegistry(fs *pflag.FlagSet, def string) {
	fs.StringVar(&o.registryAddr, "schema-registry-addr", def, "host:port of the Confluent-compatible schema registry (8081 is the usual port; docs/schema-registry.md), with the HTTP listener's authentication (--http-auth, --http-token) and TLS (--http-tls); empty disables it")
}

func (o *agentOptions) agentConfig() (agent.Config, error) {
	listeners, err := o.parseListeners()
	if err != nil {
		return agent.Config{}, err
	}
	cfg := o.cfg
	sec := &cfg.Security
	switch o.authorize {
	case "on":
		sec.Authorize = true
	case "off":
	case "auto":
		for _, l := range listeners {
			sec.Authorize = sec.Authorize || l.SASL()
		}
		sec.Authorize = sec.Authorize || sec.TLSClientCAFile != ""
	default:
		return agent.Config{}, fmt.Errorf("--authorizer %q: use auto, on or off", o.authorize)
	}
	cfg.EtcdMaxTxnOps = o.etcdMaxTxnOps
	cfg.Listeners = listeners
	cfg.Version = version
	cfg.Broker = o.topics.broker()
	cfg.Broker["message.max.bytes"] = strconv.FormatInt(int64(o.messageMaxBytes), 10)
	cfg.Broker["log.message.timestamp.type"] = o.timestampType
	return cfg, nil
}

// memoryOverhead is what an agent needs beyond its flush buffer and fetch
// cache: the runtime and code, connections, compression state, fetch
// responses being written, the segment objects being uploaded, and the
// object chunks being read (at most 8 reads ahead, each up to 1.5 chunks).
func (o *agentOptions) memoryOverhead() int64 {
	w := &o.cfg.Writer
	return 256<<20 + 2*int64(w.MaxUploads)*int64(w.SegmentTargetBytes) + 12*o.cfg.ReadChunkBytes
}

// applyMemoryLimit holds the process to --memory-limit, unless
// GOMEMLIMIT is set, and returns the limit (0: none set here). Without one
// the heap grows to about twice what is live, so an agent whose buffer
// and cache are full would take twice their size.
//
// The limit is on the process's resident memory, as a container's is: Go's
// soft memory limit, which counts only the memory the runtime manages, is
// set to it less what is resident of the executable (residentFileBytes;
// in `floe bench` at 4096 partitions the runtime kept to its limit and the
// process's RSS passed it by those 34 MiB of code).
//
// With the limit it also starts each collection at 1.5 times the live
// heap (gcPercentWithLimit), unless GOGC is set: at Go's default of
// twice, a heap whose live part is half the limit runs into the limit
// between collections, and the runtime, which caps the collector's share
// of the CPU, then lets it pass (in `floe bench` at 4096 partitions the
// agent's RSS rose 3% over its limit; with 1.5 it stayed 8% under).
func (o *agentOptions) applyMemoryLimit(log *slog.Logger) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || o.memoryLimit < 0 {
		return 0
	}
	limit := o.memoryLimit
	if limit == 0 {
		limit = o.cfg.Writer.MaxBufferBytes + o.cfg.CacheBytes + o.memoryOverhead()
	}
	runtimeLimit := limit
	if code := residentFileBytes(); code < limit/4 {
		runtimeLimit -= code
	}
	debug.SetMemoryLimit(runtimeLimit)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercentWithLimit)
	}
	log.Debug("memory limit set", "bytes", limit, "runtime_bytes", runtimeLimit)
	return limit
}

// gcPercentWithLimit is the agent's GOGC under its memory limit.
const gcPercentWithLimit = 50

// running is a started agent with its HTTP listener.
type running struct {
	agent *agent.Agent
	// reg is the agent's metrics registry, served on /metrics.
	reg   *prometheus.Registry
	http  *http.Server
	httpL net.Listener
	// registry and registryL serve the schema registry, when on.
	registry  *http.Server
	registryL net.Listener
	log       *slog.Logger
	// done is closed when the listeners' servers have returned.
	done chan struct{}
}

// startAgent starts an agent and its HTTP listener.
func startAgent(ctx context.Context, log *slog.Logger, o *agentOptions, store *metadata.Store, bucket segments.Bucket) (*running, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bucket = instrumented.Wrap(bucket, reg, instrumented.Options{})
	cfg, err := o.agentConfig()
	if err != nil {
		return nil, err
	}
	if limit := o.applyMemoryLimit(log); limit > 0 {
		g := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "floe_agent_memory_limit_bytes",
			Help: "The agent's --memory-limit: what its resident memory is held to (Go's soft limit, go_gc_gomemlimit_bytes, is this less the executable's resident code).",
		})
		g.Set(float64(limit))
		reg.MustRegister(g)
	}
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: bucket, Log: log, Registry: reg})
	if err != nil {
		return nil, err
	}
	if err := o.ensureBootstrapUser(ctx, store); err != nil {
		return nil, err
	}
	r := &running{agent: a, reg: reg, log: log, done: make(chan struct{})}
	auth, err := o.httpAuthConfig(cfg)
	if err != nil {
		return nil, err
	}
	if o.httpAddr != "" {
		ln, err := net.Listen("tcp", o.httpAddr)
		if err != nil {
			return nil, fmt.Errorf("http listener on %s: %w", o.httpAddr, err)
		}
		mux := http.NewServeMux()
		a.RegisterHTTP(mux)
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		if o.pprof {
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		r.http = &http.Server{Handler: a.ProtectHTTP(mux, auth), ReadHeaderTimeout: 10 * time.Second}
		if r.httpL, err = o.listenHTTP(ln, cfg); err != nil {
			return nil, err
		}
	}
	if o.registryAddr != "" {
		ln, err := net.Listen("tcp", o.registryAddr)
		if err != nil {
			r.closeListeners()
			return nil, fmt.Errorf("schema registry listener on %s: %w", o.registryAddr, err)
		}
		// The registry's API is at the root of its listener, where
		// Confluent's clients expect it, behind the HTTP listener's
		// authentication with no open paths.
		regAuth := auth
		regAuth.OpenPaths = nil
		h := registry.New(store, registry.Options{
			Log:        log,
			Registerer: reg,
			Protect:    func(h http.Handler) http.Handler { return a.ProtectHTTP(h, regAuth) },
		})
		r.registry = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		if r.registryL, err = o.listenHTTP(ln, cfg); err != nil {
			r.closeListeners()
			return nil, err
		}
	}
	if err := a.Start(ctx); err != nil {
		r.closeListeners()
		return nil, err
	}
	var wg sync.WaitGroup
	serve := func(name string, srv *http.Server, ln net.Listener) {
		if srv == nil {
			return
		}
		wg.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error(name+" listener failed", "err", err)
			}
		})
	}
	serve("http", r.http, r.httpL)
	serve("schema registry", r.registry, r.registryL)
	go func() {
		wg.Wait()
		close(r.done)
	}()
	return r, nil
}

// listenHTTP wraps an HTTP listener in TLS when --http-tls is set,
// closing it if that fails.
func (o *agentOptions) listenHTTP(ln net.Listener, cfg agent.Config) (net.Listener, error) {
	if !o.httpTLS {
		return ln, nil
	}
	tc, err := cfg.Security.ServerTLS()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("--http-tls: %w", err)
	}
	return tls.NewListener(ln, tc), nil
}

// closeListeners closes the listeners of a start that failed.
func (r *running) closeListeners() {
	for _, ln := range []net.Listener{r.httpL, r.registryL} {
		if ln != nil {
			ln.Close()
		}
	}
}

// HTTPAddr is the bound HTTP address, or "" when disabled.
func (r *running) HTTPAddr() string {
	if r.httpL == nil {
		return ""
	}
	return r.httpL.Addr().String()
}

// RegistryURL is the schema registry's URL, or "" when it is off.
func (r *running) RegistryURL(httpTLS bool) string {
	if r.registryL == nil {
		return ""
	}
	if httpTLS {
		return "https://" + r.registryL.Addr().String()
	}
	return "http://" + r.registryL.Addr().String()
}

// stop drains the agent, then closes the HTTP listener (so /readyz
// reports false while draining) and the schema registry's.
func (r *running) stop(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := r.agent.Shutdown(ctx)
	for _, srv := range []*http.Server{r.http, r.registry} {
		if srv != nil {
			srv.Shutdown(ctx)
		}
	}
	<-r.done
	return err
}

// parseListeners turns --listener and --advertised-listener into listener
// configs; with no --listener, --kafka-addr and --advertise-addr make one
// PLAINTEXT listener.
func (o *agentOptions) parseListeners() ([]agent.ListenerConfig, error) {
	if len(o.listeners) == 0 {
		if len(o.advertisedListeners) > 0 {
			return nil, fmt.Errorf("--advertised-listener needs a matching --listener")
		}
		return nil, nil
	}
	var out []agent.ListenerConfig
	for _, s := range o.listeners {
		l, err := agent.ParseListener(s)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	for _, s := range o.advertisedListeners {
		adv, err := agent.ParseListener(s)
		if err != nil {
			return nil, fmt.Errorf("--advertised-listener: %w", err)
		}
		found := false
		for i := range out {
			if out[i].Protocol == adv.Protocol {
				out[i].Advertise = adv.Addr
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("--advertised-listener %s: no %s --listener", s, adv.Protocol)
		}
	}
	return out, nil
}

// ensureBootstrapUser creates or updates the --sasl-bootstrap-user.
func (o *agentOptions) ensureBootstrapUser(ctx context.Context, store *metadata.Store) error {
	if o.bootstrapUser == "" {
		return nil
	}
	name, password, ok := strings.Cut(o.bootstrapUser, ":")
	if !ok || name == "" || password == "" {
		return fmt.Errorf("--sasl-bootstrap-user: want NAME:PASSWORD")
	}
	for _, mech := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
		cred, err := scramCredential(mech, password, 8192)
		if err != nil {
			return err
		}
		if err := store.SetScramCredential(ctx, name, mech, cred); err != nil {
			return fmt.Errorf("--sasl-bootstrap-user: %w", err)
		}
	}
	return nil
}

// scramCredential salts a password for a SCRAM mechanism.
func scramCredential(mech, password string, iterations int) (metadata.ScramCredential, error) {
	h, err := metadata.ScramHash(mech)
	if err != nil {
		return metadata.ScramCredential{}, err
	}
	salt := make([]byte, 24)
	if _, err := rand.Read(salt); err != nil {
		return metadata.ScramCredential{}, err
	}
	salted, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return metadata.ScramCredential{}, err
	}
	return metadata.NewScramCredential(mech, salt, salted, iterations)
}

// httpAuthConfig decides whether the HTTP listener needs credentials.
func (o *agentOptions) httpAuthConfig(cfg agent.Config) (agent.HTTPAuthConfig, error) {
	auth := agent.HTTPAuthConfig{Tokens: o.httpTokens, OpenPaths: o.httpOpen}
	switch o.httpAuth {
	case "on":
		auth.Required = true
	case "off":
	case "auto":
		auth.Required = cfg.Security.Authorize
	default:
		return auth, fmt.Errorf("--http-auth %q: use auto, on or off", o.httpAuth)
	}
	return auth, nil
}
