package agent

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readFrame returns exactly the body sent, whatever its size relative to
// the probe and however the bytes arrive, and fails on a short body.
func TestReadFrame(t *testing.T) {
	for _, size := range []int{1, frameProbe - 1, frameProbe, frameProbe + 1, 3*frameProbe + 7} {
		body := make([]byte, size)
		for i := range body {
			body[i] = byte(i * 7)
		}
		got, err := readFrame(iotest.HalfReader(bytes.NewReader(append(body, 0xff))), size)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("size %d: %d bytes, %v", size, len(got), err)
		}
		if _, err := readFrame(bytes.NewReader(body[:size-1]), size); !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			t.Fatalf("size %d, one byte short: %v", size, err)
		}
	}
}
