package agent

// The zone's shared read cache.
//
// Agents with a peer listener (--peer-addr) share their reads of the
// bucket with the other agents of their zone: every object range a fetch
// reads (a chunk, or an extent large enough to be read on its own) has an
// owner, the zone's agent ranked first for it by rendezvous hashing over
// the zone's live agents (from their etcd registrations). An agent that
// misses a range in its own cache asks the owner over HTTP on the owner's
// peer listener; the owner serves it from its chunk cache or reads it
// once for everyone who asks (logread.Reader.ServeRange). A zone thus
// GETs each chunk about once however many agents and consumer groups read
// it, and a peer's bytes never leave the zone. When the owner cannot be
// reached, the agent reads the bucket itself.
//
// Peers authenticate with the cluster's peer secret, kept in etcd
// (metadata.Store.PeerSecret): an agent already trusts whoever can read
// its etcd. The listener uses TLS when the agent has a certificate
// (--tls-cert); peers verify it against --peer-ca-file, else the client
// CA file, else the system's roots.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/floe-io/floe/agent/internal/logread"
	"github.com/floe-io/floe/internal/certs"
	"github.com/floe-io/floe/metadata"
)

// Peer protocol limits.
const (
	// peerRangePath serves GET ?object=KEY&start=N&end=M: the bytes
	// [start, end) of the object (fewer when it is shorter). 404: the
	// object does not exist; 401: no or a wrong secret.
	peerRangePath = "/floe/peer/v1/range"
	// maxPeerRange bounds one range asked of a peer.
	maxPeerRange = 512 << 20
	// maxPeerObjectKey bounds the object key of a range.
	maxPeerObjectKey = 1024
	// peerDownFor is how long a peer that could not be reached is not
	// asked again (its reads go to the bucket meanwhile).
	peerDownFor = 5 * time.Second
)

// peers is an agent's side of the zone's shared read cache: the listener
// serving the ranges it owns, and the client asking peers for theirs.
type peers struct {
	a         *Agent
	secret    string
	advertise string // this agent's peer address, as published
	ln        net.Listener
	srv       *http.Server
	client    *http.Client
	// forwardClient forwards coordinator requests, which may wait for a
	// rebalance (forward.go).
	forwardClient *http.Client
	scheme        string

	mu   sync.Mutex
	down map[string]time.Time // peer address → when it may be asked again
}

// startPeers binds the peer listener and serves it until the agent's
// context ends. It does nothing without --peer-addr.
func (a *Agent) startPeers(ctx context.Context) error {
	if a.cfg.PeerAddr == "" {
		return nil
	}
	secret, err := a.store.PeerSecret(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.PeerAddr)
	if err != nil {
		return fmt.Errorf("peer listener on %s: %w", a.cfg.PeerAddr, err)
	}
	p := &peers{a: a, secret: secret, ln: ln, scheme: "http", down: map[string]time.Time{}}
	if p.advertise, err = a.peerAdvertise(ln.Addr().String()); err != nil {
		ln.Close()
		return err
	}
	transport := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		DisableCompression:    true, // the chunks are compressed already
	}
	if a.cfg.Security.TLSCertFile != "" {
		stc, err := a.cfg.Security.serverTLS()
		if err != nil {
			ln.Close()
			return err
		}
		// Peers authenticate with the secret, not certificates.
		stc.ClientAuth, stc.ClientCAs = tls.NoClientCert, nil
		p.ln = tls.NewListener(ln, stc)
		if transport.TLSClientConfig, err = a.peerClientTLS(); err != nil {
			ln.Close()
			return err
		}
		p.scheme = "https"
	}
	p.client = &http.Client{Transport: transport}
	forwarding := transport.Clone()
	forwarding.ResponseHeaderTimeout = 0
	p.forwardClient = &http.Client{Transport: forwarding}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+peerRangePath, p.serveRange)
	mux.HandleFunc("POST "+peerKafkaPath, p.serveForwarded)
	p.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return a.ctx },
	}
	a.peers.Store(p)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("peer listener failed", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		<-a.ctx.Done()
		p.srv.Close()
		p.client.CloseIdleConnections()
		p.forwardClient.CloseIdleConnections()
	}()
	a.log.Info("agent sharing reads with its zone", "zone", a.cfg.Zone, "peer_listen", ln.Addr().String(), "peer_advertised", p.advertise)
	return nil
}

// peerReader is the reader's way to its zone's peers
// (logread.PeerReader): none until the peer listener is up, which is
// after the reader starts.
type peerReader struct{ a *Agent }

func (r peerReader) ReadRange(ctx context.Context, object string, start, end int64) ([]byte, bool, error) {
	p := r.a.peers.Load()
	if p == nil {
		return nil, true, nil
	}
	return p.ReadRange(ctx, object, start, end)
}

// peerAddr is the published address of the agent's peer listener, or "".
func (a *Agent) peerAddr() string {
	if p := a.peers.Load(); p != nil {
		return p.advertise
	}
	return ""
}

// peerAdvertise is the peer address published for a bound one: the
// configured one, else the bound port with the Kafka listener's
// advertised host in place of a wildcard host.
func (a *Agent) peerAdvertise(bound string) (string, error) {
	if a.cfg.PeerAdvertiseAddr != "" {
		return a.cfg.PeerAdvertiseAddr, nil
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "", fmt.Errorf("peer listener address %q: %w", bound, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = a.lns[0].host
	}
	return net.JoinHostPort(host, port), nil
}

// peerClientTLS verifies peers' certificates against --peer-ca-file, else
// the client CA file, else the system's roots.
func (a *Agent) peerClientTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	caFile := a.cfg.PeerCAFile
	if caFile == "" {
		caFile = a.cfg.Security.TLSClientCAFile
	}
	if caFile == "" {
		return cfg, nil
	}
	pool, err := certs.Pool(caFile)
	if err != nil {
		return nil, fmt.Errorf("peer CA: %w", err)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// zonePeers returns the live agents of zone that have peer listeners.
func (a *Agent) zonePeers(zone string) []metadata.AgentInfo {
	var out []metadata.AgentInfo
	for _, ag := range a.view.Agents() {
		if ag.Zone == zone && ag.Peer != "" {
			out = append(out, ag)
		}
	}
	return out
}

// owner returns the peer address of the zone's agent owning the range of
// object starting at start, and whether it is this agent (or none).
func (p *peers) owner(object string, start int64) (string, bool) {
	zone := p.a.zonePeers(p.a.cfg.Zone)
	if len(zone) == 0 {
		return "", true
	}
	addr := metadata.Rank(zone, object+"@"+strconv.FormatInt(start, 10))[0].Peer
	return addr, addr == p.advertise
}

// ReadRange asks the range's owner for it (logread.PeerReader).
func (p *peers) ReadRange(ctx context.Context, object string, start, end int64) ([]byte, bool, error) {
	addr, self := p.owner(object, start)
	if self {
		return nil, true, nil
	}
	p.mu.Lock()
	until, isDown := p.down[addr]
	if isDown && time.Now().After(until) {
		delete(p.down, addr)
		isDown = false
	}
	p.mu.Unlock()
	if isDown {
		return nil, true, nil // unreachable of late: read the bucket
	}
	data, err := p.get(ctx, addr, object, start, end)
	if err != nil && ctx.Err() == nil && !errors.Is(err, logread.ErrMissingObject) {
		var nerr net.Error
		if errors.As(err, &nerr) || errors.Is(err, io.ErrUnexpectedEOF) {
			p.mu.Lock()
			p.down[addr] = time.Now().Add(peerDownFor)
			p.mu.Unlock()
		}
	}
	return data, false, err
}

// errPeerStatus: a peer answered with an error status.
var errPeerStatus = errors.New("peer refused the range")

func (p *peers) get(ctx context.Context, addr, object string, start, end int64) ([]byte, error) {
	q := url.Values{"object": {object}, "start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme+"://"+addr+peerRangePath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.secret)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking peer %s for %s: %w", addr, object, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("peer %s: %w: %s", addr, logread.ErrMissingObject, object)
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%w: peer %s: %s: %s", errPeerStatus, addr, resp.Status, msg)
	}
	if resp.ContentLength > end-start {
		return nil, fmt.Errorf("peer %s: %d bytes for a range of %d", addr, resp.ContentLength, end-start)
	}
	size := end - start
	if resp.ContentLength >= 0 {
		size = resp.ContentLength
	}
	data := make([]byte, size)
	n, err := io.ReadFull(resp.Body, data)
	if err != nil {
		return nil, fmt.Errorf("reading peer %s's range of %s: %w", addr, object, err)
	}
	return data[:n:n], nil
}

// serveRange answers a peer's GET of a range.
func (p *peers) serveRange(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(w, r) {
		return
	}
	q := r.URL.Query()
	object := q.Get("object")
	start, serr := strconv.ParseInt(q.Get("start"), 10, 64)
	end, eerr := strconv.ParseInt(q.Get("end"), 10, 64)
	switch {
	case object == "" || len(object) > maxPeerObjectKey:
		http.Error(w, "object: want a segment object key", http.StatusBadRequest)
		return
	case serr != nil || eerr != nil || start < 0 || end <= start || end-start > maxPeerRange:
		http.Error(w, fmt.Sprintf("start, end: want 0 <= start < end, at most %d bytes apart", maxPeerRange), http.StatusBadRequest)
		return
	}
	data, err := p.a.reader.ServeRange(r.Context(), object, start, end)
	switch {
	case errors.Is(err, logread.ErrMissingObject):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}
