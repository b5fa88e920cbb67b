package agent

import (
	"testing"
	"time"
)

func TestFetchReadersCountsRecentConnections(t *testing.T) {
	r := newFetchReaders(time.Second)
	a, b, c := &conn{}, &conn{}, &conn{}
	now := time.Unix(1000, 0)
	if n := r.count(a, now); n != 1 {
		t.Fatalf("alone: %d readers, want 1 (the asking connection)", n)
	}
	r.read(a, now)
	r.read(b, now.Add(100*time.Millisecond))
	if n := r.count(a, now.Add(200*time.Millisecond)); n != 2 {
		t.Fatalf("a asking with b reading: %d readers, want 2", n)
	}
	if n := r.count(c, now.Add(200*time.Millisecond)); n != 3 {
		t.Fatalf("c asking with a and b reading: %d readers, want 3", n)
	}
	r.forget(b)
	if n := r.count(c, now.Add(300*time.Millisecond)); n != 2 {
		t.Fatalf("after b closed: %d readers, want 2", n)
	}
	// A reader that stopped reading is forgotten within two windows.
	if n := r.count(c, now.Add(2100*time.Millisecond)); n != 1 {
		t.Fatalf("after a stopped reading: %d readers, want 1", n)
	}
	if len(r.last) != 0 {
		t.Fatalf("%d connections remembered, want none", len(r.last))
	}
}
