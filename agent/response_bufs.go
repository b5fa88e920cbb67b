package agent

import (
	"slices"
	"sync"
)

// responseBufs holds the buffers large responses (fetches) are encoded
// into, shared by every connection. A fetch response of tens of MiB
// allocated anew is zeroed by the runtime before it is written over, which
// cost as much CPU as encoding it, and left as much garbage; a pool without
// a bound kept one such buffer per connection that wrote a large response
// lately, counted nowhere. This one keeps idle buffers up to a total size
// (a quarter of fetchMemBytes, which bounds the record batches of the
// responses in flight, and so the buffers in use; keeping the whole of it
// idle as well pushed the agent past its memory limit when three groups
// read 4096 partitions at once), and hands out the smallest that fits.
type responseBufs struct {
	mu   sync.Mutex
	idle [][]byte // by capacity, ascending
	size int64    // total capacity of idle
	max  int64
}

func newResponseBufs(max int64) *responseBufs {
	return &responseBufs{max: max}
}

// responseBufRound is the granularity buffers are allocated in, so one
// buffer serves responses of similar sizes.
const responseBufRound = 1 << 20

// get returns an empty buffer with room for n bytes.
func (p *responseBufs) get(n int) []byte {
	p.mu.Lock()
	i, _ := slices.BinarySearchFunc(p.idle, n, func(b []byte, n int) int { return cap(b) - n })
	if i < len(p.idle) {
		b := p.idle[i]
		p.idle = slices.Delete(p.idle, i, i+1)
		p.size -= int64(cap(b))
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, (n+responseBufRound-1)/responseBufRound*responseBufRound)
}

// put gives a buffer back. It is kept if it fits among the idle buffers,
// making room by dropping smaller ones; otherwise it is left to the
// collector.
func (p *responseBufs) put(b []byte) {
	c := int64(cap(b))
	if c == 0 || c > p.max {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.size+c > p.max && len(p.idle) > 0 && int64(cap(p.idle[0])) <= c {
		p.size -= int64(cap(p.idle[0]))
		p.idle = slices.Delete(p.idle, 0, 1)
	}
	if p.size+c > p.max {
		return
	}
	i, _ := slices.BinarySearchFunc(p.idle, cap(b), func(x []byte, n int) int { return cap(x) - n })
	p.idle = slices.Insert(p.idle, i, b[:0])
	p.size += c
}

// idleBytes is the capacity of the buffers kept.
func (p *responseBufs) idleBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size
}
