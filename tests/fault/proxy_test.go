package fault

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/segments"
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

// A PUT whose body is damaged on the way to MinIO is refused, and the
// object does not appear: the body is checked by the store, so a flush
// that was never stored whole is never acknowledged.
func TestDamagedPutIsRefused(t *testing.T) {
	mc := testenv.MinIO(t)
	p, err := NewProxy("127.0.0.1:0", mc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := fmt.Sprintf("minio://%s/%s/damaged-put-%d?secure=false", p.Addr(), mc.Bucket, time.Now().UnixNano())
	bucket, err := segments.OpenBucket(ctx, url, segments.BucketOptions{AccessKey: mc.AccessKey, SecretKey: mc.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	body := bytes.Repeat([]byte{0xab}, 1<<20)

	// One byte of the body flipped: 0xab occurs only in the payload,
	// never in HTTP headers or aws-chunked framing (hex and CRLF).
	var flipped atomic.Bool
	p.SetHook(func(_ uint64, fromClient bool, chunk []byte) bool {
		if !fromClient || flipped.Load() {
			return true
		}
		if i := bytes.IndexByte(chunk, 0xab); i >= 0 && flipped.CompareAndSwap(false, true) {
			chunk[i] ^= 0x01
		}
		return true
	})
	if err := bucket.Put(ctx, "damaged", body); err == nil {
		t.Fatal("a PUT whose body was damaged in transit succeeded")
	} else {
		t.Logf("damaged PUT refused: %v", err)
	}
	if !flipped.Load() {
		t.Fatal("the proxy never saw the body")
	}
	if rc, err := bucket.GetRange(ctx, "damaged", 0, -1); !errors.Is(err, segments.ErrNotFound) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("after a refused PUT, reading the object: %v; want ErrNotFound", err)
	}

	p.SetHook(nil)
	if err := bucket.Put(ctx, "whole", body); err != nil {
		t.Fatalf("an undamaged PUT through the proxy: %v", err)
	}
	rc, err := bucket.GetRange(ctx, "whole", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes (%v), want the %d put", len(got), err, len(body))
	}
	if err := bucket.Delete(ctx, []string{"whole"}); err != nil {
		t.Logf("cleaning up: %v", err)
	}
}
