package agent

// Coordination in the client's zone.
//
// Group and transaction coordinators are placed among all live agents,
// so for a zoned client one is often in another zone. Such a client is
// told (by FindCoordinator) that an agent of its own zone coordinates its
// group or transactional ID; that agent forwards the client's requests
// for it to the real coordinator over the peer listener and relays the
// answers. The coordinator serves a forwarded request as if the client
// had sent it itself (its principal, client ID and address travel with
// it: ACLs and group descriptions see the client, not the forwarding
// agent), and a request it cannot serve (it is no longer the
// coordinator) is answered NOT_COORDINATOR as any other, so the client
// looks again. Only coordination crosses zones this way, and only
// between agents; clients' connections stay in their zone.
//
// Forwarding needs both agents to have peer listeners (--peer-addr); a
// coordinator without one is named to clients as it is.

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/metadata"
)

// Forwarding protocol.
const (
	// peerKafkaPath serves POST of one coordinator request: the body is the API
	// key and version (2 bytes each, big-endian) then the request's body
	// as Kafka encodes it; the answer is the response's body. The client's
	// identity travels in the headers below.
	peerKafkaPath = "/floe/peer/v1/kafka"
	// maxForwardedRequest bounds a forwarded request's body.
	maxForwardedRequest = 16 << 20

	headerPrincipal = "Floe-Principal"
	headerClientID  = "Floe-Client-Id"
	headerClient    = "Floe-Client-Addr"
	headerZone      = "Floe-Client-Zone"
)

// Coordinator kinds, as FindCoordinator numbers them.
const (
	coordinatorGroup int8 = 0
	coordinatorTxn   int8 = 1
)

// forwardedKey returns the coordinator kind and key of a request a proxy
// forwards to its coordinator: the requests of group members and their
// commits, and those of transactional producers to their coordinator,
// each naming one group or transactional ID.
func forwardedKey(req kmsg.Request) (int8, string, bool) {
	if id, ok := forwardedTxn(req); ok {
		return coordinatorTxn, id, true
	}
	group, ok := forwardedGroup(req)
	return coordinatorGroup, group, ok
}

// forwardedTxn returns the transactional ID of a request to its
// transaction coordinator.
func forwardedTxn(req kmsg.Request) (string, bool) {
	switch r := req.(type) {
	case *kmsg.InitProducerIDRequest:
		if r.TransactionalID != nil {
			return *r.TransactionalID, true
		}
	case *kmsg.AddPartitionsToTxnRequest:
		if r.Version < 4 { // v4+ are brokers' verifications
			return r.TransactionalID, true
		}
	case *kmsg.AddOffsetsToTxnRequest:
		return r.TransactionalID, true
	case *kmsg.EndTxnRequest:
		return r.TransactionalID, true
	}
	return "", false
}

// forwardedGroup returns the group of a request to its group
// coordinator.
func forwardedGroup(req kmsg.Request) (string, bool) {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return r.Group, true
	case *kmsg.SyncGroupRequest:
		return r.Group, true
	case *kmsg.HeartbeatRequest:
		return r.Group, true
	case *kmsg.LeaveGroupRequest:
		return r.Group, true
	case *kmsg.ConsumerGroupHeartbeatRequest:
		return r.Group, true
	case *kmsg.OffsetCommitRequest:
		return r.Group, true
	case *kmsg.TxnOffsetCommitRequest:
		return r.Group, true
	case *kmsg.OffsetDeleteRequest:
		return r.Group, true
	case *kmsg.OffsetFetchRequest:
		if r.Version < 8 {
			return r.Group, true
		}
		if len(r.Groups) == 1 {
			return r.Groups[0].Group, true
		}
	}
	return "", false
}

// coordinatorOf returns the agent coordinating a group or transactional
// ID.
func (a *Agent) coordinatorOf(kind int8, key string) metadata.AgentInfo {
	if kind == coordinatorTxn {
		return a.txns.coordinatorOf(key)
	}
	return a.groups.coordinatorOf(key)
}

// zoneCoordinator returns the agent a client of zone should be told
// coordinates a group or transactional ID: the coordinator itself when it
// is in the zone (or the client has none, or either agent cannot
// forward), else the zone's agent ranked first for the key among those
// with peer listeners.
func (a *Agent) zoneCoordinator(kind int8, key, zone string) metadata.AgentInfo {
	coord := a.coordinatorOf(kind, key)
	if zone == "" || coord.Zone == zone || coord.Peer == "" || a.peers.Load() == nil {
		return coord
	}
	in := a.zonePeers(zone)
	if len(in) == 0 {
		return coord
	}
	rankKey := metadata.GroupKey(key)
	if kind == coordinatorTxn {
		rankKey = metadata.TxnKey(key)
	}
	return metadata.Rank(in, rankKey)[0]
}

// forward sends a request for a group or transactional ID this agent does
// not coordinate to the coordinator in another zone, and answers the
// client with its response. It reports whether it took the request.
func (c *conn) forward(rq *request) bool {
	a := c.a
	p := a.peers.Load()
	if p == nil {
		return false
	}
	kind, key, ok := forwardedKey(rq.req)
	if !ok {
		return false
	}
	coord := a.coordinatorOf(kind, key)
	if coord.Peer == "" || coord.Zone == a.cfg.Zone || coord.NodeID == a.NodeID() {
		return false
	}
	stopping := a.groups.ctx
	if kind == coordinatorTxn {
		stopping = a.txns.ctx
	}
	a.metrics.forwards.Inc()
	c.goAsync(func() {
		// The coordinators' shutdown (the agent drains) ends the forward,
		// which may be a join parked for a rebalance.
		ctx, cancel := context.WithCancel(c.ctx)
		defer cancel()
		defer context.AfterFunc(stopping, cancel)()
		resp, err := p.forward(ctx, coord.Peer, rq)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("forwarding a request to its coordinator failed; answering it here", "api", kmsg.NameForKey(rq.req.Key()), "key", key, "coordinator", coord.NodeID, "err", err)
				a.metrics.forwardErrors.Inc()
			}
			// Served here, it is answered NOT_COORDINATOR, and the
			// client looks for the coordinator again.
			apis[rq.req.Key()].serve(a, c.ctx, rq)
			return
		}
		rq.reply(resp)
	})
	return true
}

// forward posts a request to a peer's coordinator and decodes its answer.
func (p *peers) forward(ctx context.Context, addr string, rq *request) (kmsg.Response, error) {
	body := make([]byte, 4, 256)
	binary.BigEndian.PutUint16(body, uint16(rq.req.Key()))
	binary.BigEndian.PutUint16(body[2:], uint16(rq.req.GetVersion()))
	body = rq.req.AppendTo(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.scheme+"://"+addr+peerKafkaPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.secret)
	req.Header.Set(headerPrincipal, rq.conn.auth.principal)
	req.Header.Set(headerClientID, rq.clientID)
	req.Header.Set(headerClient, rq.conn.remote)
	req.Header.Set(headerZone, rq.zone)
	resp, err := p.forwardClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forwarding to %s: %w", addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedRequest))
	if err != nil {
		return nil, fmt.Errorf("reading %s's answer: %w", addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: peer %s: %s: %s", errPeerStatus, addr, resp.Status, bytes.TrimSpace(data[:min(len(data), 512)]))
	}
	kresp := rq.req.ResponseKind()
	kresp.SetVersion(rq.req.GetVersion())
	if err := kresp.ReadFrom(data); err != nil {
		return nil, fmt.Errorf("decoding %s's answer: %w", addr, err)
	}
	return kresp, nil
}

// serveForwarded serves a coordinator request a zone's agent forwarded
// for its client.
func (p *peers) serveForwarded(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(w, r) {
		return
	}
	a := p.a
	if !a.ready.Load() {
		// Starting (its coordinators are not up yet) or draining.
		http.Error(w, "the agent is not serving", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxForwardedRequest+1))
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	case len(body) > maxForwardedRequest || len(body) < 4:
		http.Error(w, "want the API key, version and request body, at most 16 MiB", http.StatusBadRequest)
		return
	}
	key, version := int16(binary.BigEndian.Uint16(body)), int16(binary.BigEndian.Uint16(body[2:]))
	spec, known := apis[key]
	kreq := kmsg.RequestForKey(key)
	if !known || kreq == nil || version < spec.min || version > spec.max {
		http.Error(w, fmt.Sprintf("API %d v%d is not served", key, version), http.StatusBadRequest)
		return
	}
	kreq.SetVersion(version)
	if err := kreq.ReadFrom(body[4:]); err != nil {
		http.Error(w, "decoding the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	if _, _, ok := forwardedKey(kreq); !ok {
		http.Error(w, kmsg.NameForKey(key)+" is not forwarded", http.StatusBadRequest)
		return
	}
	remote := r.Header.Get(headerClient)
	principal := r.Header.Get(headerPrincipal)
	if principal == "" {
		principal = anonymous
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &conn{
		a:        a,
		lst:      a.lns[0],
		auth:     connAuth{principal: principal, authenticated: true},
		remote:   remote,
		cidrZone: a.zoneNets.zoneOf(remote),
		log:      a.log.With("client", remote, "forwarded_by", r.RemoteAddr),
		ctx:      ctx,
		cancel:   cancel,
	}
	rq := &request{conn: c, req: kreq, clientID: r.Header.Get(headerClientID), zone: r.Header.Get(headerZone), received: time.Now(), done: make(chan struct{})}
	a.metrics.requests.WithLabelValues(kmsg.NameForKey(key)).Inc()
	spec.serve(a, ctx, rq)
	select {
	case <-rq.done:
	case <-ctx.Done():
		return // the forwarding agent gave up
	}
	c.async.Wait()
	if rq.err != nil || rq.resp == nil {
		http.Error(w, fmt.Sprintf("the request was not answered: %v", rq.err), http.StatusBadGateway)
		return
	}
	out := rq.resp.AppendTo(nil)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// authorized checks a peer's secret, answering 401 when it is wrong.
func (p *peers) authorized(w http.ResponseWriter, r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(tok), []byte(p.secret)) == 1 {
		return true
	}
	p.a.log.Warn("peer authentication failed", "peer", r.RemoteAddr, "path", r.URL.Path)
	http.Error(w, "peer authentication required", http.StatusUnauthorized)
	return false
}
