package fault

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes each line back.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestProxyForwardsDelaysAndCuts(t *testing.T) {
	p, err := NewProxy("127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })

	roundTrip := func(msg string) (string, time.Duration, error) {
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			return "", 0, err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return "", 0, err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return line, time.Since(start), err
	}

	if got, _, err := roundTrip("hello"); err != nil || got != "hello\n" {
		t.Fatalf("plain: %q, %v", got, err)
	}

	p.SetLatency(150 * time.Millisecond)
	if got, took, err := roundTrip("slow"); err != nil || got != "slow\n" || took < 300*time.Millisecond {
		t.Fatalf("with latency: %q in %v, %v; want both directions delayed 150ms", got, took, err)
	}
	p.SetLatency(0)

	var sawClient atomic.Bool // the hook runs on the proxy's goroutines
	p.SetHook(func(conn uint64, fromClient bool, chunk []byte) bool {
		if fromClient {
			sawClient.Store(true)
			return !bytes.Contains(chunk, []byte("cut"))
		}
		return true
	})
	if got, _, err := roundTrip("cut here"); err == nil {
		t.Fatalf("the hook did not cut the connection: read %q", got)
	}
	if got, _, err := roundTrip("keep"); err != nil || got != "keep\n" || !sawClient.Load() {
		t.Fatalf("after a cut, a new connection: %q, %v (hook saw the client: %v)", got, err, sawClient.Load())
	}
}
