package agent

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxInFlight bounds the requests one connection may have admitted but not
// yet answered. Kafka clients pipeline up to five produce requests; fetch
// and group requests add a few more.
const maxInFlight = 64

// writeTimeout bounds one response write; a client that does not read its
// responses for this long is disconnected.
const writeTimeout = 60 * time.Second

// conn is one client connection. The read goroutine parses requests and
// admits them in order; the write goroutine sends responses in the same
// order as each becomes ready, so responses never overtake each other even
// when later requests finish first.
type conn struct {
	a      *Agent
	nc     net.Conn
	lst    *listener
	remote string
	log    *slog.Logger
	// cidrZone is the client's zone by its address (--zone-cidrs).
	cidrZone string
	// The last zone seen, when its metrics label was worked out, and the
	// byte counters of that label (zoneBytes); the read goroutine's alone.
	labelZone string
	labelAt   time.Time
	zoneBytes *zoneBytes

	// auth is the connection's identity. It is written by the read
	// goroutine only (SASL requests are handled synchronously there) and
	// read by handlers, which also run there or after it (goAsync).
	auth connAuth

	ctx    context.Context // cancelled when the connection is torn down
	cancel context.CancelFunc

	pending chan *request // admitted requests, in order, to the writer
	async   sync.WaitGroup

	// deadlineMu orders the idle deadline the read loop sets against
	// stopReading's, so a drain's stop is never overwritten.
	deadlineMu sync.Mutex
	stopping   bool
}

// request is one admitted request and, once ready, its response.
type request struct {
	conn     *conn
	req      kmsg.Request
	clientID string
	// zone is the client's zone (zones.go), "" when it has none;
	// outBytes counts its response's bytes.
	zone     string
	outBytes prometheus.Counter
	corr     int32
	received time.Time

	once sync.Once
	done chan struct{}
	resp kmsg.Response // nil: send nothing (acks=0 produce)
	err  error         // non-nil: close the connection instead of answering
	// closeAfter closes the connection once the response is written
	// (failed authentication).
	closeAfter bool
	// written, if set, runs once the response was written or will never
	// be (the connection closed): a fetch gives back the memory budget its
	// response held.
	written     func()
	writtenOnce sync.Once
	// encoded, if set, runs once the response is encoded, before it is
	// written: a fetch gives back the buffers its batches were joined
	// into.
	encoded func()
	// held is the request's bytes in the agent's request memory budget,
	// given back when it settles.
	held int64
	// frame is the request's body when it was read into a buffer of the
	// agent's frameBufs. Its handler sets frameFree once nothing refers
	// to the body any more, and the buffer is then given back when the
	// request settles; otherwise the collector takes it.
	frame     []byte
	frameFree atomic.Bool
}

// settle runs rq.written, once.
func (rq *request) settle() {
	rq.writtenOnce.Do(func() {
		rq.conn.a.requestMem.give(rq.held)
		if rq.frame != nil {
			if rq.frameFree.Load() {
				rq.conn.a.frameBufs.put(rq.frame)
			} else {
				rq.conn.a.frameBufs.forget(rq.frame)
			}
			rq.frame = nil
		}
		if rq.written != nil {
			rq.written()
		}
	})
}

func (rq *request) finish(resp kmsg.Response, err error) {
	rq.once.Do(func() {
		rq.resp, rq.err = resp, err
		close(rq.done)
	})
}

// reply answers the request. Only the first answer counts.
func (rq *request) reply(resp kmsg.Response) { rq.finish(resp, nil) }

// noReply completes the request without a response, as acks=0 requires.
func (rq *request) noReply() { rq.finish(nil, nil) }

// fail closes the connection instead of answering.
func (rq *request) fail(err error) { rq.finish(nil, err) }

// goAsync runs fn on a goroutine owned by the connection; the connection
// waits for it before it is torn down.
func (c *conn) goAsync(fn func()) {
	c.async.Add(1)
	go func() {
		defer c.async.Done()
		fn()
	}()
}

func (a *Agent) newConn(ctx context.Context, nc net.Conn, l *listener) *conn {
	cctx, cancel := context.WithCancel(ctx)
	remote := nc.RemoteAddr().String()
	return &conn{
		a:        a,
		nc:       nc,
		lst:      l,
		auth:     connAuth{principal: anonymous},
		remote:   remote,
		cidrZone: a.zoneNets.zoneOf(remote),
		log:      a.log.With("client", remote),
		ctx:      cctx,
		cancel:   cancel,
		pending:  make(chan *request, maxInFlight),
	}
}

// serve runs the connection until the client goes away, a protocol error
// occurs, or the agent drains. It returns when every goroutine it started
// has stopped.
func (c *conn) serve() {
	defer c.cancel()
	a := c.a
	a.metrics.connections.Inc()
	defer a.metrics.connections.Dec()

	if !c.handshake() {
		c.nc.Close()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.pending)
	<-writerDone
	c.cancel()
	c.async.Wait()
	// Requests the writer did not get to are never answered.
	for rq := range c.pending {
		rq.settle()
	}
	a.fetchReaders.forget(c)
	c.nc.Close()
}

// stopReading makes the read loop return at its next read, letting
// admitted requests finish and their responses be written (graceful
// drain).
func (c *conn) stopReading() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	c.stopping = true
	c.nc.SetReadDeadline(time.Now())
}

// armIdle gives the client until the idle limit to send its next request
// (unless reading has stopped).
func (c *conn) armIdle() {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.stopping {
		c.nc.SetReadDeadline(time.Now()) // a TLS handshake may have cleared it
		return
	}
	if idle := c.a.cfg.ConnectionsMaxIdle; idle > 0 {
		c.nc.SetReadDeadline(time.Now().Add(idle))
	} else {
		c.nc.SetReadDeadline(time.Time{})
	}
}

// maxRequest is the largest request the connection accepts now: small
// until a SASL client has authenticated.
func (c *conn) maxRequest() int32 {
	if !c.auth.authenticated {
		return min(c.a.cfg.MaxRequestBytes, c.a.cfg.Security.SASLMaxReceiveBytes)
	}
	return c.a.cfg.MaxRequestBytes
}

func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	var sizeBuf [4]byte
	for {
		c.armIdle()
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			c.logReadError(err)
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if max := c.maxRequest(); size < 8 || size > max {
			c.log.Warn("closing connection: request size out of range", "size", size, "max", max, "authenticated", c.auth.authenticated)
			c.a.metrics.protocolErrors.Inc()
			return
		}
		// The body counts against the agent's request memory from before
		// it is read until it is answered; it is read as it arrives, so a
		// size announced and not sent holds little.
		if err := c.a.requestMem.wait(c.ctx, int64(size)); err != nil {
			return
		}
		body, pooled, err := readFrame(br, int(size), c.a.frameBufs)
		if err != nil {
			c.a.requestMem.give(int64(size))
			c.logReadError(err)
			return
		}
		rq, err := c.parse(body)
		if err != nil {
			c.a.requestMem.give(int64(size))
			if pooled {
				c.a.frameBufs.put(body) // nothing kept it
			}
			c.log.Warn("closing connection: bad request", "err", err)
			c.a.metrics.protocolErrors.Inc()
			return
		}
		rq.held = int64(size)
		if pooled {
			rq.frame = body
		}
		if rq.zone != c.labelZone || c.zoneBytes == nil || time.Since(c.labelAt) > 10*time.Second {
			c.labelZone, c.labelAt = rq.zone, time.Now()
			c.zoneBytes = c.a.zoneBytesFor(rq.zone)
		}
		in, out := c.zoneBytes.of(rq)
		in.Add(float64(size) + 4)
		rq.outBytes = out
		select {
		case c.pending <- rq:
		case <-c.ctx.Done():
			rq.settle()
			return
		}
		c.dispatch(rq)
	}
}

func (c *conn) logReadError(err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.log.Debug("client closed mid-request")
	default:
		c.log.Debug("read failed", "err", err)
	}
}

// parse decodes a request frame: the request header, then the body with
// kmsg.
func (c *conn) parse(body []byte) (*request, error) {
	r := kbin.Reader{Src: body}
	key := r.Int16()
	version := r.Int16()
	corr := r.Int32()
	clientID := r.NullableString()
	if !r.Ok() {
		return nil, fmt.Errorf("truncated request header")
	}
	rq := &request{conn: c, corr: corr, received: time.Now(), done: make(chan struct{})}
	if clientID != nil {
		rq.clientID = *clientID
	}
	spec, known := apis[key]
	kreq := kmsg.RequestForKey(key)
	if !known || kreq == nil {
		return nil, fmt.Errorf("unsupported API key %d (%s) v%d from client %q", key, kmsg.NameForKey(key), version, rq.clientID)
	}
	if version < spec.min || version > spec.max {
		if key == kmsg.ApiVersions.Int16() {
			// KIP-511: answer in v0 with our range so the client retries
			// with a version we speak.
			resp := apiVersionsResponse(0, kerr.UnsupportedVersion.Code)
			rq.req = &kmsg.ApiVersionsRequest{Version: 0}
			rq.reply(resp)
			return rq, nil
		}
		return nil, fmt.Errorf("%s v%d is not supported (v%d to v%d are) from client %q", kmsg.NameForKey(key), version, spec.min, spec.max, rq.clientID)
	}
	kreq.SetVersion(version)
	if kreq.IsFlexible() {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return nil, fmt.Errorf("truncated request header tags")
		}
	}
	if err := kreq.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("decoding %s v%d from client %q: %w", kmsg.NameForKey(key), version, rq.clientID, err)
	}
	rq.req = kreq
	rq.zone = zoneFromClientID(rq.clientID)
	if f, ok := kreq.(*kmsg.FetchRequest); ok && rq.zone == "" && len(f.Rack) <= maxZoneLength {
		rq.zone = f.Rack
	}
	if rq.zone == "" {
		rq.zone = c.cidrZone
	}
	return rq, nil
}

// dispatch hands an admitted request to its API's handler. Requests that
// were already answered while parsing (KIP-511) are skipped.
func (c *conn) dispatch(rq *request) {
	select {
	case <-rq.done:
		return
	default:
	}
	spec := apis[rq.req.Key()]
	c.a.metrics.requests.WithLabelValues(kmsg.NameForKey(rq.req.Key())).Inc()
	if err := c.checkAuthenticated(rq.req.Key()); err != nil {
		c.a.metrics.protocolErrors.Inc()
		rq.fail(err)
		return
	}
	if c.forward(rq) {
		return
	}
	spec.serve(c.a, c.ctx, rq)
}

func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(c.nc, 64<<10)
	var buf []byte
	for rq := range c.pending {
		if !c.writeOne(bw, rq, &buf) {
			return
		}
	}
	bw.Flush()
}

// writeOne writes one request's response (waiting for it), and reports
// whether the connection is still good to write to.
func (c *conn) writeOne(bw *bufio.Writer, rq *request, buf *[]byte) bool {
	defer rq.settle()
	fail := func(err error) bool {
		c.log.Debug("write failed", "err", err)
		c.cancel()
		c.nc.Close()
		return false
	}
	select {
	case <-rq.done:
	default:
		// The next response is not ready (a pipelined produce waiting for
		// a later flush): send the ones written so far now, not when it is.
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				return fail(err)
			}
		}
		select {
		case <-rq.done:
		case <-c.ctx.Done():
			return false
		}
	}
	c.a.metrics.observeLatency(rq)
	if rq.err != nil {
		c.log.Warn("closing connection", "api", kmsg.NameForKey(rq.req.Key()), "client_id", rq.clientID, "err", rq.err)
		c.cancel()
		c.nc.Close()
		return false
	}
	if rq.resp == nil {
		return true
	}
	// Large responses (fetches) are encoded into buffers shared by every
	// connection (responseBufs), small ones into the connection's own.
	dst := (*buf)[:0]
	var large []byte // from responseBufs, given back as it came
	if f, ok := rq.resp.(*kmsg.FetchResponse); ok {
		if n := fetchResponseSize(f); n > 1<<20 {
			large = c.a.responseBufs.get(n)
			dst = large
		}
	}
	out := encodeResponse(dst, rq.corr, rq.resp)
	if rq.encoded != nil {
		rq.encoded()
	}
	if rq.outBytes != nil {
		rq.outBytes.Add(float64(len(out)))
	}
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := bw.Write(out)
	if large != nil {
		c.a.responseBufs.put(large)
	} else if cap(out) <= 1<<20 {
		*buf = out // small responses reuse the connection's buffer
	}
	if err != nil {
		return fail(err)
	}
	if len(c.pending) == 0 {
		if err := bw.Flush(); err != nil {
			return fail(err)
		}
	}
	if rq.closeAfter {
		bw.Flush()
		c.cancel()
		c.nc.Close()
		return false
	}
	return true
}

// encodeResponse appends a size-prefixed response frame. Flexible
// responses carry an empty tagged-field section in the header, except
// ApiVersions, whose response header is always v0 (KIP-511).
func encodeResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	if f, ok := resp.(*kmsg.FetchResponse); ok {
		// Size the buffer once: a fetch response is mostly record batches,
		// and growing a buffer to tens of MiB copies them again and again.
		dst = slices.Grow(dst, fetchResponseSize(f))
	}
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[:4], uint32(len(dst)-4))
	return dst
}

// fetchResponseSize is a little more than a fetch response's encoded size:
// its record batches, plus a generous allowance for everything else.
func fetchResponseSize(f *kmsg.FetchResponse) int {
	n := 64
	for _, t := range f.Topics {
		n += 64 + len(t.Topic)
		for _, p := range t.Partitions {
			n += 64 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}

// errMessage returns a pointer for the ErrorMessage fields of responses.
func errMessage(msg string) *string {
	if msg == "" {
		return nil
	}
	return &msg
}
