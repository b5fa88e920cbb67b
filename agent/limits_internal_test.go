package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// readFrame returns exactly the body sent, whatever its size relative to
// the probe and however the bytes arrive, and fails on a short body. A
// body past the probe is read into a pooled buffer, which a short body
// gives back; a buffer given back is handed out again, and overwritten.
func TestReadFrame(t *testing.T) {
	frames := newBufPool(64<<20, 0, frameBufRound, time.Hour)
	defer frames.close()
	for _, size := range []int{1, frameProbe - 1, frameProbe, frameProbe + 1, 3*frameProbe + 7} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		got, pooled, err := readFrame(iotest.HalfReader(bytes.NewReader(append(body, 0xff))), size, frames)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
		if want := size > frameProbe; pooled != want || (frames.usedBytes() > 0) != want {
			t.Fatalf("size %d: pooled %v with %d bytes in use, want pooled %v", size, pooled, frames.usedBytes(), want)
		}
		if pooled {
			frames.put(got)
		}
		if _, _, err := readFrame(bytes.NewReader(body[:size-1]), size, frames); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("size %d, one byte short: %v", size, err)
		}
		if used := frames.usedBytes(); used != 0 {
			t.Fatalf("size %d: %d bytes of the pool in use after a short body", size, used)
		}
	}
	if frames.idleBytes() == 0 {
		t.Fatal("no buffer kept for reuse")
	}
	// A body read into a reused buffer is what was sent, not what the
	// buffer held before.
	body := bytes.Repeat([]byte{0x5a}, frameProbe+100)
	got, _, err := readFrame(bytes.NewReader(body), len(body), frames)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("reused buffer: %d bytes, %v", len(got), err)
	}
}

// takeWithin takes all it wants once that is free, waiting for bytes
// given back meanwhile, and what is free (at least the floor) when the
// wait ends.
func TestByteBudgetTakeWithin(t *testing.T) {
	ctx := context.Background()
	b := newByteBudget(100)
	if got := b.takeWithin(ctx, 60, 10, time.Hour); got != 60 {
		t.Fatalf("with 100 free: took %d, want 60", got)
	}
	// 40 free: wait for the 60 to come back.
	go func() {
		time.Sleep(20 * time.Millisecond)
		b.give(60)
	}()
	if got := b.takeWithin(ctx, 70, 10, time.Hour); got != 70 {
		t.Fatalf("after bytes were given back: took %d, want 70", got)
	}
	// 30 free, nothing given back: what is free once the wait ends.
	if got := b.takeWithin(ctx, 50, 10, 10*time.Millisecond); got != 30 {
		t.Fatalf("at the end of the wait: took %d, want the 30 free", got)
	}
	// Nothing free: the floor, at once when ctx has ended.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := b.takeWithin(cancelled, 50, 10, time.Hour); got != 10 {
		t.Fatalf("with ctx ended and nothing free: took %d, want the floor 10", got)
	}
	if used := b.held(); used != 110 {
		t.Fatalf("%d bytes held, want 110", used)
	}
}
