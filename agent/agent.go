package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/floe-io/floe/agent/internal/logread"
	"github.com/floe-io/floe/agent/internal/logwrite"
	"github.com/floe-io/floe/internal/node"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// Deps are the components an agent runs on (shared with the other roles).
type Deps = node.Deps

// Agent is one floe agent: a Kafka listener backed by etcd and the object
// store.
type Agent struct {
	cfg      Config
	store    *metadata.Store
	bucket   segments.Bucket
	log      *slog.Logger
	metrics  *metrics
	registry prometheus.Registerer
	zoneNets zoneCIDRs // --zone-cidrs

	cluster metadata.ClusterInfo
	view    *metadata.View
	marks   *metadata.WatermarkWatcher
	writer  *logwrite.Writer
	reader  *logread.Reader
	// fetchMem bounds the record batches of fetch responses held at once;
	// fetchHolding counts the fetches holding some of it, fetchReaders
	// the connections that lately received batches.
	fetchMem     *byteBudget
	fetchHolding atomic.Int32
	fetchReaders *fetchReaders
	// responseBufs are the buffers fetch responses are joined and
	// encoded into.
	responseBufs *bufPool
	// reading counts the fetches reading their partitions now: a fetch
	// reads with several goroutines only while cores are left over.
	reading atomic.Int32
	// requestMem bounds request bodies read and not yet answered;
	// frameBufs are the buffers large ones are read into.
	requestMem *byteBudget
	frameBufs  *bufPool
	limits     *connLimits
	lns        []*listener

	producerIDs producerIDs
	// idScan lists every topic for ID lookups the view misses, at most
	// once a second.
	idScan topicScan

	groups *groupCoordinator // consumer groups this agent coordinates
	txns   *txnCoordinator   // transactional IDs this agent coordinates

	aborted *abortedCache // aborted transactions, for read_committed fetches
	feed    *offsetsFeed  // records for __consumer_offsets
	lag     *lagTracker   // every group's recent commits

	tlsConfig *tls.Config // of SSL and SASL_SSL listeners
	// peers is the zone's shared read cache, once its listener is up
	// (peers.go); nil without --peer-addr.
	peers atomic.Pointer[peers]

	regMu sync.Mutex
	reg   *metadata.Registration

	ready    atomic.Bool
	draining atomic.Bool
	// withdrawn is set when a shutting-down agent takes itself out of
	// the cluster's view: it no longer names itself a leader or a
	// coordinator, while still serving what reaches it.
	withdrawn atomic.Bool

	ctx    context.Context // lives until Shutdown finishes
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the agent owns

	connsMu sync.Mutex
	conns   map[*conn]struct{}
	connsWG sync.WaitGroup
}

// New checks the configuration and returns an agent ready to Start.
func New(cfg Config, deps Deps) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Bucket == nil {
		return nil, errors.New("agent: a metadata store and a bucket are required")
	}
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	zoneNets, err := parseZoneCIDRs(cfg.ZoneCIDRs)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &Agent{
		cfg:      cfg,
		store:    deps.Store,
		bucket:   deps.Bucket,
		log:      log,
		metrics:  newMetrics(deps.Registry),
		registry: deps.Registry,
		conns:    map[*conn]struct{}{},
		zoneNets: zoneNets,
	}, nil
}

// Start loads the cluster's metadata, binds the Kafka listener, registers
// the agent in etcd and begins serving. It returns once clients can
// connect. ctx bounds startup only; the agent runs until Shutdown.
func (a *Agent) Start(ctx context.Context) error {
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ok := false
	defer func() {
		if !ok {
			a.cancel()
			a.wg.Wait()
		}
	}()

	cluster, err := a.store.EnsureCluster(ctx)
	if err != nil {
		return err
	}
	a.cluster = cluster
	if v := cluster.EntryVersion(); v < metadata.LatestLogEntryVersion {
		a.log.Info("the cluster writes an older log entry format, which older releases read; once every agent and compactor runs this release, `floe cluster finalize` switches it to the newest (docs/operations.md)",
			"log_entry_version", v, "newest", metadata.LatestLogEntryVersion)
	}
	if err := a.createOffsetsTopic(ctx); err != nil {
		return err
	}

	view, err := a.store.StartView(a.ctx, a.log)
	if err != nil {
		return fmt.Errorf("loading metadata: %w", err)
	}
	a.view = view
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		view.Wait()
	}()

	a.fetchMem = newByteBudget(fetchMemBytes)
	a.fetchReaders = newFetchReaders(fetchReaderWindow)
	a.responseBufs = newBufPool(2*fetchMemBytes, fetchMemBytes/4, responseBufRound, bufPoolIdleTTL)
	a.requestMem = newByteBudget(a.cfg.QueuedMaxRequestBytes)
	a.frameBufs = newBufPool(min(frameBufsMax, a.cfg.QueuedMaxRequestBytes), frameBufsMax/4, frameBufRound, bufPoolIdleTTL)
	a.limits = newConnLimits(a.cfg.MaxConnections, a.cfg.MaxConnectionsPerIP)
	registerRequestMemMetric(a.registry, a.requestMem)
	registerBufPoolMetric(a.registry, a.responseBufs, "response_buffers",
		"Capacity of the idle buffers kept for joining and encoding large fetch responses (with those in use, at most twice the 64 MiB fetch memory budget).",
		"Capacity of the buffers large fetch responses are being joined and encoded into.")
	registerBufPoolMetric(a.registry, a.frameBufs, "request_buffers",
		"Capacity of the idle buffers kept for reading large requests (produces) into (with those in use, at most 64 MiB).",
		"Capacity of the pooled buffers large requests are held in until they are answered.")
	a.idScan.scans = a.metrics.topicScans
	rcfg := logread.Config{CacheBytes: a.cfg.CacheBytes, ChunkBytes: a.cfg.ReadChunkBytes}
	if a.cfg.PeerAddr != "" {
		rcfg.Peers = peerReader{a}
	}
	a.reader = logread.New(a.ctx, a.store, a.bucket, rcfg, a.log, a.registry)
	a.aborted = newAbortedCache(a.store, a.registry)
	marks, err := a.store.StartWatermarkWatcher(a.ctx, a.log, metadata.WatermarkHooks{
		OnEntry: func(sh metadata.ShardID, e *metadata.LogEntry) {
			a.reader.Observe(sh, e)
			a.aborted.observe(sh, e)
		},
		OnAhead: func(sh metadata.ShardID) { a.aborted.forget(sh.Topic) },
		OnReset: func() {
			a.reader.Reset()
			a.aborted.reset()
		},
	})
	if err != nil {
		return err
	}
	a.marks = marks
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		marks.Wait()
	}()
	committer := a.store.NewCommitter(metadata.CommitConfig{
		MaxTxnOps:                a.cfg.EtcdMaxTxnOps,
		MaxRequestBytes:          a.cfg.EtcdMaxRequestBytes,
		MaxProducersPerPartition: a.cfg.MaxProducersPerPartition,
		Observer:                 newCommitTxnMetrics(a.registry),
		OnCommit:                 marks.Observe,
	})
	registerCommitterMetrics(a.registry, committer)
	a.writer = logwrite.New(a.ctx, a.cfg.Writer, a.bucket, committer, marks, a.log, a.registry)
	registerLimitMetrics(a.registry, a.cfg)
	a.startOffsetsFeed()
	if err := a.startLagTracker(); err != nil {
		return err
	}

	if err := a.listen(); err != nil {
		return err
	}
	if err := a.startPeers(ctx); err != nil {
		a.closeListeners()
		return err
	}
	if err := a.register(ctx); err != nil {
		a.closeListeners()
		return err
	}
	a.startGroups()
	a.startTxns()

	for _, l := range a.lns {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.acceptLoop(l)
		}()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.keepRegistered()
	}()
	a.ready.Store(true)
	ok = true
	for _, l := range a.lns {
		a.log.Info("agent serving Kafka", "listener", l.cfg.Protocol, "listen", l.ln.Addr().String(), "advertised", net.JoinHostPort(l.host, strconv.Itoa(int(l.port))), "node_id", a.NodeID(), "cluster_id", cluster.ID)
	}
	return nil
}

// listener is one bound Kafka listener.
type listener struct {
	cfg  ListenerConfig
	ln   net.Listener
	host string // advertised
	port int32
}

// listen binds every configured listener and resolves its advertised
// address.
func (a *Agent) listen() error {
	for _, lc := range a.cfg.Listeners {
		if lc.TLS() && a.tlsConfig == nil {
			tc, err := a.cfg.Security.serverTLS()
			if err != nil {
				a.closeListeners()
				return err
			}
			a.tlsConfig = tc
		}
		ln, err := net.Listen("tcp", lc.Addr)
		if err != nil {
			a.closeListeners()
			return fmt.Errorf("%s listener on %s: %w", lc.Protocol, lc.Addr, err)
		}
		l := &listener{cfg: lc, ln: ln}
		a.lns = append(a.lns, l)
		addr := lc.Advertise
		if addr == "" {
			addr = ln.Addr().String()
		}
		host, portStr, err := net.SplitHostPort(addr)
		if err != nil {
			a.closeListeners()
			return fmt.Errorf("advertise address %q: %w", addr, err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			if host, err = os.Hostname(); err != nil {
				a.closeListeners()
				return fmt.Errorf("listener binds every interface and the hostname is unknown (%v); set an advertise address", err)
			}
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			a.closeListeners()
			return fmt.Errorf("advertise address %q: bad port", addr)
		}
		l.host, l.port = host, int32(port)
	}
	return nil
}

func (a *Agent) closeListeners() {
	for _, l := range a.lns {
		l.ln.Close()
	}
}

// register publishes this agent under a lease.
func (a *Agent) register(ctx context.Context) error {
	endpoints := map[string]string{}
	for _, l := range a.lns {
		endpoints[l.cfg.Protocol] = net.JoinHostPort(l.host, strconv.Itoa(int(l.port)))
	}
	reg, err := a.store.RegisterAgent(ctx, metadata.AgentInfo{
		AgentID:   uuid.NewString(),
		Host:      a.lns[0].host,
		Port:      a.lns[0].port,
		Listeners: endpoints,
		Zone:      a.cfg.Zone,
		Peer:      a.peerAddr(),
		Started:   time.Now().UTC(),
		Version:   a.cfg.Version,

		MaxCommitDelay: a.cfg.Writer.MaxCommitDelay,
	}, a.cfg.LeaseTTL)
	if err != nil {
		return err
	}
	a.regMu.Lock()
	a.reg = reg
	a.regMu.Unlock()
	return nil
}

// keepRegistered re-registers when the lease is lost (etcd unreachable
// for longer than the TTL), so the agent reappears once etcd is back.
func (a *Agent) keepRegistered() {
	for {
		a.regMu.Lock()
		reg := a.reg
		a.regMu.Unlock()
		select {
		case <-a.ctx.Done():
			return
		case <-reg.Done():
		}
		if a.draining.Load() {
			return
		}
		a.log.Warn("agent lease lost; registering again", "node_id", reg.Info().NodeID)
		for a.ctx.Err() == nil && !a.draining.Load() {
			rctx, cancel := context.WithTimeout(a.ctx, a.cfg.LeaseTTL)
			err := a.register(rctx)
			cancel()
			if err == nil {
				a.log.Info("agent registered again", "node_id", a.NodeID())
				break
			}
			a.log.Warn("registering agent failed; retrying", "err", err)
			select {
			case <-a.ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (a *Agent) acceptLoop(l *listener) {
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("accept failed", "err", err)
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		// At --max-connections the connection waits, unserved, for one to
		// close, and this listener accepts no other meanwhile (the rest
		// queue in its backlog).
		if !a.limits.waitSlot(a.ctx) {
			nc.Close()
			return
		}
		ip, ok := a.limits.admitIP(nc.RemoteAddr())
		if !ok {
			a.log.Info("closing connection: too many from one address", "client", nc.RemoteAddr().String(), "max", a.cfg.MaxConnectionsPerIP)
			a.metrics.connectionsRefused.Inc()
			nc.Close()
			a.limits.freeSlot()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		if l.cfg.TLS() {
			nc = tls.Server(nc, a.tlsConfig)
		}
		c := a.newConn(a.ctx, nc, l)
		a.connsMu.Lock()
		if a.draining.Load() {
			a.connsMu.Unlock()
			nc.Close()
			a.limits.leaveIP(ip)
			a.limits.freeSlot()
			continue
		}
		a.conns[c] = struct{}{}
		a.connsWG.Add(1)
		a.connsMu.Unlock()
		go func() {
			defer a.connsWG.Done()
			defer a.limits.freeSlot()
			defer a.limits.leaveIP(ip)
			c.serve()
			a.connsMu.Lock()
			delete(a.conns, c)
			a.connsMu.Unlock()
		}()
	}
}

// Addr is the address the first Kafka listener is bound to.
func (a *Agent) Addr() string { return a.lns[0].ln.Addr().String() }

// ListenerAddr is the bound address of the listener for protocol, or ""
// when there is none.
func (a *Agent) ListenerAddr(protocol string) string {
	for _, l := range a.lns {
		if l.cfg.Protocol == protocol {
			return l.ln.Addr().String()
		}
	}
	return ""
}

// AdvertisedAddr is the host:port clients of the first listener are told
// to use.
func (a *Agent) AdvertisedAddr() string {
	return net.JoinHostPort(a.lns[0].host, strconv.Itoa(int(a.lns[0].port)))
}

// NodeID is the broker ID this agent currently holds.
func (a *Agent) NodeID() int32 {
	a.regMu.Lock()
	defer a.regMu.Unlock()
	return a.reg.Info().NodeID
}

// ClusterID is the cluster's ID as clients see it.
func (a *Agent) ClusterID() string { return a.cluster.ID }

// Shutdown drains the agent: /readyz turns false, the listener closes,
// connections stop reading new requests, admitted requests are answered,
// and the agent's registration is revoked so its partitions move at once.
// If ctx ends first, remaining work is cancelled.
func (a *Agent) Shutdown(ctx context.Context) error {
	if !a.draining.CompareAndSwap(false, true) {
		return errors.New("agent: already shut down")
	}
	a.ready.Store(false)
	a.withdraw(ctx)
	a.closeListeners()
	a.handOff(ctx)

	a.connsMu.Lock()
	for c := range a.conns {
		c.stopReading()
	}
	a.connsMu.Unlock()
	// Parked JoinGroup and SyncGroup requests are answered
	// NOT_COORDINATOR now, so draining does not wait for rebalances.
	a.stopGroups()
	a.stopTxns()
	// Records for __consumer_offsets go into the last flush.
	a.feed.close()
	// Admitted produce requests are waiting for their flush: seal it now
	// rather than at the next interval.
	a.writer.FlushNow()

	drained := make(chan struct{})
	go func() {
		a.connsWG.Wait()
		close(drained)
	}()
	dctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	var err error
	select {
	case <-drained:
	case <-dctx.Done():
		err = fmt.Errorf("agent: drain did not finish: %w", dctx.Err())
	}

	if werr := a.writer.Close(dctx); werr != nil && err == nil {
		err = fmt.Errorf("agent: %w", werr)
	}

	a.regMu.Lock()
	if rerr := a.reg.Close(); rerr != nil && err == nil {
		err = fmt.Errorf("agent: deregistering: %w", rerr)
	}
	a.regMu.Unlock()

	a.cancel()
	<-drained
	a.reader.Close()
	a.wg.Wait()
	a.responseBufs.close()
	a.frameBufs.close()
	a.log.Info("agent stopped")
	return err
}

// handOff goes on serving the connections clients already have for up to
// cfg.ShutdownHandoff after the agent left the cluster's view. Their
// requests for groups and transactions that moved are answered
// NOT_COORDINATOR, which every client follows to the new coordinator,
// instead of meeting a closed connection and a refused dial mid-request
// (franz-go gives up an OffsetFetch on a refused dial and ends its group
// session). A Kafka broker's controlled shutdown likewise serves until its
// leadership has moved. It ends early once no connection remains.
func (a *Agent) handOff(ctx context.Context) {
	if a.cfg.ShutdownHandoff <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ShutdownHandoff)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		a.connsMu.Lock()
		open := len(a.conns)
		a.connsMu.Unlock()
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// withdrawTimeout bounds how long a shutting-down agent waits for its
// withdrawal to reach the cluster's view before it stops listening.
const withdrawTimeout = 2 * time.Second

// withdraw takes the agent out of the cluster before it stops serving, as
// a Kafka broker's controlled shutdown moves leadership away first: its
// registration is deleted (the lease, and the group claims under it, stay
// until Shutdown ends), and once the view has seen that, every agent's
// Metadata and FindCoordinator answers name others, and this agent's
// groups move by placement. Clients that ask again meanwhile are sent
// elsewhere instead of to an address about to refuse them.
func (a *Agent) withdraw(ctx context.Context) {
	a.withdrawn.Store(true)
	a.regMu.Lock()
	reg := a.reg
	a.regMu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, withdrawTimeout)
	defer cancel()
	rev, err := reg.Withdraw(wctx)
	if err == nil {
		err = a.view.WaitAgentsRevision(wctx, rev)
	}
	if err != nil {
		a.log.Warn("withdrawing from the cluster before shutting down", "err", err)
	}
}

// RegisterHTTP adds the agent's HTTP endpoints to mux: /healthz (the
// process is up), /readyz (registered and not draining: send traffic),
// and the lag API, /v1/groups (http_groups.go).
func (a *Agent) RegisterHTTP(mux *http.ServeMux) {
	a.registerGroupsHTTP(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if !a.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		fmt.Fprintln(w, "ready")
	})
}
