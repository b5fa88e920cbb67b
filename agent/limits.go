package agent

import (
	"context"
	"io"
	"net"
	"sync"
	"time"
)

// Limits on what clients can make an agent hold: request bodies being read
// and queued (queued.max.request.bytes), connections in all and per
// address (max.connections, max.connections.per.ip). Idle connections
// close after connections.max.idle.ms (conn.go), and connections that
// have not completed SASL may send only small requests
// (sasl.server.max.receive.size).

// byteBudget hands out bytes of a fixed budget: fetch responses take
// what is free (take), request bodies wait for what they need (wait).
type byteBudget struct {
	mu    sync.Mutex
	cap   int64
	used  int64
	freed chan struct{} // closed and replaced when bytes are given back
}

func newByteBudget(capacity int64) *byteBudget {
	return &byteBudget{cap: capacity, freed: make(chan struct{})}
}

// take reserves up to want bytes: what is free, but at least floor (so a
// request always makes progress, possibly over the budget).
func (b *byteBudget) take(want, floor int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(want, max(b.cap-b.used, floor))
	b.used += n
	return n
}

// takeWithin reserves want bytes once they are free, waiting at most
// within for them (or until ctx ends); then, like take, what is free but at
// least floor.
func (b *byteBudget) takeWithin(ctx context.Context, want, floor int64, within time.Duration) int64 {
	var deadline *time.Timer
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
	}()
	for {
		b.mu.Lock()
		if b.cap-b.used >= want {
			b.used += want
			b.mu.Unlock()
			return want
		}
		freed := b.freed
		b.mu.Unlock()
		if deadline == nil {
			deadline = time.NewTimer(within)
		}
		select {
		case <-freed:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		return b.take(want, floor)
	}
}

// wait reserves n bytes, waiting until they are free or ctx ends. One
// reservation larger than the whole budget is let in when nothing else
// holds any, so every request can be served.
func (b *byteBudget) wait(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.used+n <= b.cap || b.used == 0 {
			b.used += n
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// give returns n bytes take or wait reserved.
func (b *byteBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
}

// held is the bytes reserved now.
func (b *byteBudget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// readFrame reads a request body of size bytes. A body larger than
// frameProbe is first read into a pooled probe buffer of that size, and
// the body's own buffer taken only once the probe is full: a frame that
// announces a large size and sends little costs little. That buffer comes
// from frames, and pooled reports it did; its holder gives it back with
// put once nothing refers to the body (a produce's batches, which the
// segment being built refers to until it is written), or with forget
// when it cannot tell.
func readFrame(r io.Reader, size int, frames *bufPool) (body []byte, pooled bool, err error) {
	if size <= frameProbe {
		buf := make([]byte, size)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, false, err
		}
		return buf, false, nil
	}
	probe := probes.Get().(*[frameProbe]byte)
	defer probes.Put(probe)
	if _, err := io.ReadFull(r, probe[:]); err != nil {
		return nil, false, err
	}
	buf := frames.get(size)[:size]
	copy(buf, probe[:])
	if _, err := io.ReadFull(r, buf[frameProbe:]); err != nil {
		frames.put(buf)
		return nil, false, err
	}
	return buf, true, nil
}

// frameProbe is how much of a large request body is read before its
// buffer is allocated.
const frameProbe = 64 << 10

// frameBufRound is the granularity request buffers are allocated in, so
// that bodies of similar sizes share buffers (a produce's size follows
// what its client had buffered).
const frameBufRound = 1 << 20

// frameBufsMax bounds the request buffers kept idle together with those
// in use (and never more than --queued-max-request-bytes): the produce
// requests of a busy moment, which an idempotent client sends at most
// five at a time, each about a linger's worth of records.
const frameBufsMax = 64 << 20

var probes = sync.Pool{New: func() any { return new([frameProbe]byte) }}

// connLimits counts connections per client address and in all.
type connLimits struct {
	mu    sync.Mutex
	perIP map[string]int
	maxIP int           // 0: no limit
	slots chan struct{} // nil: no limit; else one token per open connection
}

func newConnLimits(maxConns, maxPerIP int) *connLimits {
	l := &connLimits{perIP: map[string]int{}, maxIP: maxPerIP}
	if maxConns > 0 {
		l.slots = make(chan struct{}, maxConns)
	}
	return l
}

// waitSlot waits until the agent has room for one more connection (as
// with Kafka's max.connections, new connections wait to be served). It
// returns false once ctx ends.
func (l *connLimits) waitSlot(ctx context.Context) bool {
	if l.slots == nil {
		return true
	}
	select {
	case l.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// freeSlot gives back what waitSlot took.
func (l *connLimits) freeSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// admitIP counts a connection from addr, unless that address already has
// the most it may (max.connections.per.ip).
func (l *connLimits) admitIP(addr net.Addr) (ip string, ok bool) {
	ip = addr.String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxIP > 0 && l.perIP[ip] >= l.maxIP {
		return ip, false
	}
	l.perIP[ip]++
	return ip, true
}

// leaveIP uncounts a connection admitIP counted.
func (l *connLimits) leaveIP(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}
