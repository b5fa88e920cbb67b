package main

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
)

// The agent holds its resident memory to --memory-limit: Go's limit, which
// does not count the executable's code, is the limit less that code.
func TestMemoryLimitLeavesRoomForCode(t *testing.T) {
	if os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("GOMEMLIMIT is set: the agent leaves the limit to it")
	}
	prevLimit, prevGC := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(prevGC)
	t.Cleanup(func() {
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevGC)
	})
	code := residentFileBytes()
	if runtime.GOOS == "linux" && code <= 0 {
		t.Fatalf("resident file-backed memory %d on Linux; want the test binary's code", code)
	}
	o := &agentOptions{memoryLimit: 1 << 30}
	if got := o.applyMemoryLimit(slog.New(slog.NewTextHandler(io.Discard, nil))); got != 1<<30 {
		t.Fatalf("applyMemoryLimit returned %d, want the configured 1 GiB", got)
	}
	runtimeLimit := debug.SetMemoryLimit(-1)
	// The code's resident part may grow a little between the two reads.
	if want := int64(1<<30) - code; runtimeLimit > want || runtimeLimit < want-(8<<20) {
		t.Fatalf("Go's memory limit %d; want 1 GiB less the %d bytes of resident code", runtimeLimit, code)
	}
}
