package agent

import (
	"slices"
	"sync"
	"time"
)

// bufPool holds large buffers shared by every connection: the agent has
// two, one for the buffers large responses (fetches) are encoded into and
// a fetch's record batches are joined into (joinRun), one for the bodies
// of large requests (produces) as they are read. A buffer of MiB
// allocated anew is zeroed by the runtime before it is written over, and
// when the heap has given the memory back to the system, faulted in page
// by page: for fetches that cost as much CPU as encoding the response,
// and for produces a seventh of the agent's CPU at 4096 partitions.
//
// The pool is bounded together with the buffers in use: it keeps a
// buffer given back only while what it keeps idle and what is handed out
// stay within max. The buffers in use are bounded by a memory budget of
// their own (the fetch memory, each response's batches once joined and
// once encoded; the request memory), so with max at no more than twice
// that budget, keeping idle buffers adds nothing to the agent's peak: the
// memory is what the responses or requests of a busy moment took. (A
// bound on idle buffers alone, unrelated to those in use, let idle and
// in-use buffers together push the agent past its memory limit when
// three groups read 4096 partitions at once.) It hands out the smallest
// idle buffer that fits.
//
// Idle buffers past floor are dropped once none was asked for in
// idleTTL: what a burst of reads took is not kept through what the agent
// does next (a produce phase then ran at 50 MiB more RSS).
type bufPool struct {
	max, floor int64
	round      int // buffers are allocated in multiples of it
	idleTTL    time.Duration

	mu       sync.Mutex
	idle     [][]byte // by capacity, ascending
	size     int64    // total capacity of idle
	out      int64    // total capacity handed out and not given back
	lastGet  time.Time
	trimming *time.Timer // set while a trim is due
	closed   bool
}

func newBufPool(max, floor int64, round int, idleTTL time.Duration) *bufPool {
	return &bufPool{max: max, floor: floor, round: round, idleTTL: idleTTL}
}

// bufPoolIdleTTL is how long the agent's buffers past a pool's floor are
// kept idle.
const bufPoolIdleTTL = 2 * time.Second

// responseBufRound is the granularity response buffers are allocated in,
// so one buffer serves responses of similar sizes.
const responseBufRound = 1 << 20

// get returns an empty buffer with room for n bytes. Every buffer it
// returns is given back with put, as it was returned (its capacity is
// what is counted in use).
func (p *bufPool) get(n int) []byte {
	size := (n + p.round - 1) / p.round * p.round
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
	// lock, which other buffers wait for.
	return make([]byte, 0, size)
}

// put gives back a buffer get returned. It is kept if it fits among the
// idle buffers beside those in use, making room by dropping smaller idle
// ones; otherwise it is left to the collector.
func (p *bufPool) put(b []byte) {
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
func (p *bufPool) trim() {
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
func (p *bufPool) close() {
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

// forget gives up a buffer get returned without keeping it: its holder
// cannot tell when nothing refers to it any more, so it is left to the
// collector.
func (p *bufPool) forget(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = max(p.out-int64(cap(b)), 0)
}

// putAll puts each of bufs.
func (p *bufPool) putAll(bufs [][]byte) {
	for _, b := range bufs {
		p.put(b)
	}
}

// idleBytes is the capacity of the buffers kept.
func (p *bufPool) idleBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}

// usedBytes is the capacity of the buffers handed out.
func (p *bufPool) usedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out
}
