package agent

import (
	"testing"
	"time"
)

// The pool hands out the smallest idle buffer that fits, allocates in
// whole MiB when none does, and keeps a buffer given back only while the
// idle ones and those still handed out stay within its bound, dropping
// smaller idle buffers for a larger one.
func TestResponseBufsAreBounded(t *testing.T) {
	p := newBufPool(9<<20, 9<<20, responseBufRound, time.Hour)
	a := p.get(3<<20 + 1)
	if cap(a) != 4<<20 || len(a) != 0 {
		t.Fatalf("new buffer: len %d cap %d, want 0 and 4 MiB", len(a), cap(a))
	}
	b := p.get(1 << 20)
	c := p.get(5 << 20)
	if got := p.usedBytes(); got != 10<<20 {
		t.Fatalf("in use %d, want 10 MiB", got)
	}
	// 4 MiB idle beside the 6 MiB still in use is over the bound: dropped.
	p.put(a)
	if got, used := p.idleBytes(), p.usedBytes(); got != 0 || used != 6<<20 {
		t.Fatalf("idle %d in use %d, want 0 and 6 MiB", got, used)
	}
	p.put(b)
	if got := p.idleBytes(); got != 1<<20 {
		t.Fatalf("idle %d, want 1 MiB", got)
	}
	p.put(c[:17]) // given back as it came, whatever it holds
	if got, used := p.idleBytes(), p.usedBytes(); got != 6<<20 || used != 0 {
		t.Fatalf("idle %d in use %d, want 6 MiB and 0", got, used)
	}
	if got := p.get(2 << 20); cap(got) != 5<<20 || len(got) != 0 {
		t.Fatalf("get 2 MiB: cap %d len %d, want the idle 5 MiB buffer, empty", cap(got), len(got))
	}
	if got := p.get(1 << 20); cap(got) != 1<<20 {
		t.Fatalf("get 1 MiB: cap %d, want the idle 1 MiB buffer", cap(got))
	}
	if got, used := p.idleBytes(), p.usedBytes(); got != 0 || used != 6<<20 {
		t.Fatalf("idle %d in use %d after taking everything, want 0 and 6 MiB", got, used)
	}
}

// A buffer given back while others are in use is kept only within the
// bound beside them; once they are back, the pool keeps up to its bound,
// dropping smaller idle buffers for a larger one, and never keeps a
// buffer larger than the bound.
func TestResponseBufsKeepLargerOnes(t *testing.T) {
	p := newBufPool(9<<20, 9<<20, responseBufRound, time.Hour)
	a, b := p.get(8<<20), p.get(3<<20)
	p.put(b) // 8 MiB still in use
	if got := p.idleBytes(); got != 0 {
		t.Fatalf("idle %d while 8 MiB are in use, want 0", got)
	}
	p.put(a)
	if got := p.idleBytes(); got != 8<<20 {
		t.Fatalf("idle %d, want 8 MiB", got)
	}
	c := p.get(9 << 20) // the idle 8 MiB do not fit: a new one
	if cap(c) != 9<<20 || p.idleBytes() != 8<<20 {
		t.Fatalf("get 9 MiB: cap %d, idle %d; want a new 9 MiB buffer beside the idle 8", cap(c), p.idleBytes())
	}
	p.put(c)
	if got := p.idleBytes(); got != 9<<20 {
		t.Fatalf("idle %d, want 9 MiB (the 8 MiB buffer dropped for the 9)", got)
	}
	d := p.get(10 << 20)
	p.put(d)
	if got, used := p.idleBytes(), p.usedBytes(); got != 9<<20 || used != 0 {
		t.Fatalf("idle %d in use %d after a buffer over the bound, want 9 MiB and 0", got, used)
	}
}

// Idle buffers past the floor are dropped, largest first, once none was
// asked for in the pool's idle time, and not before.
func TestResponseBufsTrimWhenIdle(t *testing.T) {
	p := newBufPool(9<<20, 2<<20, responseBufRound, time.Hour)
	defer p.close()
	bufs := [][]byte{p.get(1 << 20), p.get(3 << 20), p.get(4 << 20)}
	for _, b := range bufs {
		p.put(b)
	}
	p.trim() // asked for just now
	if got := p.idleBytes(); got != 8<<20 {
		t.Fatalf("idle %d after a trim within the idle time, want 8 MiB", got)
	}
	p.mu.Lock()
	p.lastGet = time.Now().Add(-2 * time.Hour)
	p.mu.Unlock()
	p.trim()
	if got := p.idleBytes(); got != 1<<20 {
		t.Fatalf("idle %d after the idle time, want the 1 MiB buffer (the floor is 2 MiB)", got)
	}

	// The pool trims by itself.
	q := newBufPool(9<<20, 0, responseBufRound, 10*time.Millisecond)
	defer q.close()
	q.put(q.get(4 << 20))
	deadline := time.Now().Add(10 * time.Second)
	for q.idleBytes() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("idle %d long after the idle time", q.idleBytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
