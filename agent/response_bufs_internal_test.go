package agent

import "testing"

// The pool hands out the smallest idle buffer that fits, allocates in
// whole MiB when none does, and never keeps more than its bound idle,
// dropping smaller buffers for a larger one.
func TestResponseBufsAreBounded(t *testing.T) {
	p := newResponseBufs(9 << 20)
	a := p.get(3<<20 + 1)
	if cap(a) != 4<<20 || len(a) != 0 {
		t.Fatalf("new buffer: len %d cap %d, want 0 and 4 MiB", len(a), cap(a))
	}
	b := p.get(1 << 20)
	c := p.get(5 << 20)
	p.put(a)
	p.put(b)
	if got := p.idleBytes(); got != 5<<20 {
		t.Fatalf("idle %d, want 5 MiB", got)
	}
	// 5 MiB more does not fit beside 5 MiB idle: the 1 MiB buffer is
	// dropped, and then it fits.
	p.put(c[:17])
	if got := p.idleBytes(); got != 9<<20 {
		t.Fatalf("idle %d, want 9 MiB", got)
	}
	if got := p.get(2 << 20); cap(got) != 4<<20 || len(got) != 0 {
		t.Fatalf("get 2 MiB: cap %d len %d, want the idle 4 MiB buffer, empty", cap(got), len(got))
	}
	if got := p.get(5 << 20); cap(got) != 5<<20 {
		t.Fatalf("get 5 MiB: cap %d, want the idle 5 MiB buffer", cap(got))
	}
	if got := p.idleBytes(); got != 0 {
		t.Fatalf("idle %d after taking everything", got)
	}
	// A buffer larger than the bound is never kept, nor one that would
	// need a larger one dropped.
	p.put(make([]byte, 0, 10<<20))
	p.put(make([]byte, 0, 8<<20))
	p.put(make([]byte, 0, 3<<20))
	if got := p.idleBytes(); got != 8<<20 {
		t.Fatalf("idle %d, want 8 MiB", got)
	}
}
