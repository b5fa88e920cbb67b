package fault

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy between floe and MinIO. It can delay every write
// it forwards (MinIO slowed) and hand each chunk to a hook that may cut
// the connection (the compactor killed mid-merge). With neither set it
// only forwards.
type Proxy struct {
	ln     net.Listener
	target string

	latency atomic.Int64 // nanoseconds added before each forwarded write
	nextID  atomic.Uint64

	hookMu sync.Mutex
	hook   Hook

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Hook sees every chunk a proxied connection carries, before it is
// forwarded: conn identifies the client connection, fromClient the
// direction. Returning false closes both sides instead of forwarding.
// Hooks run on the connections' goroutines and must be quick.
type Hook func(conn uint64, fromClient bool, chunk []byte) bool

// NewProxy listens on listen (host:port; port 0 picks one) and forwards
// every connection to target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.accept()
	}()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency delays every forwarded write, in both directions, by d;
// 0 stops delaying.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetHook installs h (nil removes it).
func (p *Proxy) SetHook(h Hook) {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	p.hook = h
}

func (p *Proxy) getHook() Hook {
	p.hookMu.Lock()
	defer p.hookMu.Unlock()
	return p.hook
}

// Close stops accepting, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.untrack(client)
	upstream, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return // the client sees its connection closed, as if refused
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	id := p.nextID.Add(1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.pipe(id, true, upstream, client)
	}()
	go func() {
		defer wg.Done()
		p.pipe(id, false, client, upstream)
	}()
	wg.Wait()
}

// pipe copies src to dst, applying the latency and the hook to each
// chunk. At the end of src's stream it half-closes dst; on any error, or
// when the hook cuts the connection, it closes both sides so the other
// pipe ends too.
func (p *Proxy) pipe(id uint64, fromClient bool, dst, src net.Conn) {
	cut := func() {
		dst.Close()
		src.Close()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if h := p.getHook(); h != nil && !h(id, fromClient, buf[:n]) {
				cut()
				return
			}
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				cut()
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok && err == io.EOF {
				tc.CloseWrite()
				return
			}
			cut()
			return
		}
	}
}
