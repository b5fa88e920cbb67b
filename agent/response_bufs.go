package agent

import (
	"slices"
	"sync"
	"time"
)

// responseBufs holds the buffers large responses (fetches) are encoded
// into, and those a fetch's record batches are joined into (joinRun),
// shared by every connection. A buffer of tens of MiB allocated anew is
// zeroed by the runtime before it is written over, which cost as much CPU
// as encoding it, and left as much garbage.
//
// The pool is bounded together with the buffers in use: it keeps a
// buffer given back only while what it keeps idle and what is handed out
// stay within max. The buffers in use are bounded by the fetch memory
// budget (each response's batches once joined and once encoded), so with
// max at twice that budget, keeping idle buffers adds nothing to the
// agent's peak: the memory is what the responses of a busy moment took.
// (A bound on idle buffers alone, unrelated to those in use, let idle and
// in-use buffers together push the agent past its memory limit when
// three groups read 4096 partitions at once.) It hands out the smallest
// idle buffer that fits.
//
// Idle buffers past floor are dropped once none was asked for in
// idleTTL: what a burst of reads took is not kept through what the agent
// does next (a produce phase then ran at 50 MiB more RSS).
type responseBufs struct {
	max, floor int64
	idleTTL    time.Duration

	mu       sync.Mutex
	idle     [][]byte // by capacity, ascending
	size     int64    // total capacity of idle
	out      int64    // total capacity handed out and not given back
	lastGet  time.Time
	trimming *time.Timer // set while a trim is due
	closed   bool
}

func newResponseBufs(max, floor int64, idleTTL time.Duration) *responseBufs {
	return &responseBufs{max: max, floor: floor, idleTTL: idleTTL}
}

// responseBufsIdleTTL is how long the agent's response buffers past a
// quarter of the fetch memory budget are kept idle.
const responseBufsIdleTTL = 2 * time.Second

// responseBufRound is the granularity buffers are allocated in, so one
// buffer serves responses of similar sizes.
const responseBufRound = 1 << 20

// get returns an empty buffer with room for n bytes. Every buffer it
// returns is given back with put, as it was returned (its capacity is
// what is counted in use).
func (p *responseBufs) get(n int) []byte {
	size := (n + responseBufRound - 1) / responseBufRound * responseBufRound
	p.mu.Lock()
	p.lastGet = time.Now()
	i, _ := slices.BinarySearchFunc(p.idle, n, func(b []byte, n int) int { return cap(b) - n })
	if i < len(p.idle) {
		b := p.idle[i]
		p.idle = slices.Delete(p.idle, i, i+1)
		p.size -= int64(cap(b))
		p.out += int64(cap(b))
		p.mu.Unlock()
		return b[:0]
	}
	p.out += int64(size)
	p.mu.Unlock()
	// Allocated (and zeroed: megabytes for a wide response) without the
	// lock, which other responses' buffers wait for.
	return make([]byte, 0, size)
}

// put gives back a buffer get returned. It is kept if it fits among the
// idle buffers beside those in use, making room by dropping smaller idle
// ones; otherwise it is left to the collector.
func (p *responseBufs) put(b []byte) {
	c := int64(cap(b))
	if c == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = max(p.out-c, 0)
	if c > p.max {
		return
	}
	for p.out+p.size+c > p.max && len(p.idle) > 0 && int64(cap(p.idle[0])) <= c {
		p.size -= int64(cap(p.idle[0]))
		p.idle = slices.Delete(p.idle, 0, 1)
	}
	if p.out+p.size+c > p.max {
		return
	}
	i, _ := slices.BinarySearchFunc(p.idle, cap(b), func(x []byte, n int) int { return cap(x) - n })
	p.idle = slices.Insert(p.idle, i, b[:0])
	p.size += c
	if p.size > p.floor && p.trimming == nil && !p.closed {
		p.trimming = time.AfterFunc(p.idleTTL, p.trim)
	}
}

// trim drops idle buffers past floor, largest first, if none was asked
// for in idleTTL; otherwise it looks again when that will be so.
func (p *responseBufs) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trimming = nil
	if p.closed {
		return
	}
	if wait := p.idleTTL - time.Since(p.lastGet); wait > 0 {
		p.trimming = time.AfterFunc(wait, p.trim)
		return
	}
	for p.size > p.floor {
		last := len(p.idle) - 1
		p.size -= int64(cap(p.idle[last]))
		p.idle[last] = nil
		p.idle = p.idle[:last]
	}
}

// close drops the idle buffers and stops trimming.
func (p *responseBufs) close() {
	if p == nil {
		return // the agent never started
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.trimming != nil {
		p.trimming.Stop()
		p.trimming = nil
	}
	clear(p.idle)
	p.idle, p.size = nil, 0
}

// putAll puts each of bufs.
func (p *responseBufs) putAll(bufs [][]byte) {
	for _, b := range bufs {
		p.put(b)
	}
}

// idleBytes is the capacity of the buffers kept.
func (p *responseBufs) idleBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// usedBytes is the capacity of the buffers handed out.
func (p *responseBufs) usedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}
