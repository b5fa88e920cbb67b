package agent_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/segments"
)

// Bad input the protocol and data tests do not cover: a segment object
// that is gone or damaged (with the log line naming it), and RecordBatches
// whose length field lies in every way inside a well-formed produce
// request. Each gets a Kafka error for that request only; the agent keeps
// serving.

// logBuffer is a log handler's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// addLoggedAgent starts a plaintext agent on c's store and bucket whose
// log goes to the returned buffer.
func addLoggedAgent(t *testing.T, c *testCluster) (*agent.Agent, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	fastFlush(&cfg)
	a, err := agent.New(cfg, agent.Deps{Store: c.store, Bucket: c.bucket, Log: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	c.agents = append(c.agents, a)
	return a, logs
}

// A segment object that is gone, or whose bytes are damaged, fails the
// fetches that need it with an error for that partition and a log line
// naming the object; other partitions, and later requests on the same
// connection, are served.
func TestBrokenObjectFailsOnlyItsFetch(t *testing.T) {
	skipRawInSecureMode(t)
	for _, tc := range []struct {
		name    string
		breakIt func(ctx context.Context, b segments.Bucket, key string) error
		want    error
	}{
		{"deleted", func(ctx context.Context, b segments.Bucket, key string) error {
			return b.Delete(ctx, []string{key})
		}, kerr.KafkaStorageError},
		{"corrupted", func(ctx context.Context, b segments.Bucket, key string) error {
			rc, err := b.GetRange(ctx, key, 0, -1)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(rc)
			rc.Close()
			if err != nil {
				return err
			}
			data := buf.Bytes()
			for i := 40; i < len(data)-8; i += 5 {
				data[i] ^= 0xa5
			}
			return b.Put(ctx, key, data)
		}, kerr.CorruptMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t)
			_, logs := addLoggedAgent(t, c)
			createTopic(t, c, "broken", 1, nil)
			createTopic(t, c, "kept", 1, nil)
			cl := c.client()
			if r := produceRaw(t, cl, "broken", 0, recordBatch(-1, -1, -1, "doomed")); r.ErrorCode != 0 {
				t.Fatalf("produce: %v", kerr.ErrorForCode(r.ErrorCode))
			}
			// Break every object written so far (nothing has read them,
			// so no cache holds them), then write the healthy topic.
			ctx := testCtx(t)
			var keys []string
			if err := c.bucket.List(ctx, "", func(o segments.ObjectInfo) error {
				keys = append(keys, o.Key)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(keys) != 1 {
				t.Fatalf("the produce wrote %d objects, want 1: %v", len(keys), keys)
			}
			if err := tc.breakIt(ctx, c.bucket, keys[0]); err != nil {
				t.Fatal(err)
			}
			if r := produceRaw(t, cl, "kept", 0, recordBatch(-1, -1, -1, "fine")); r.ErrorCode != 0 {
				t.Fatalf("produce after breaking the object: %v", kerr.ErrorForCode(r.ErrorCode))
			}

			r := fetchRaw(t, cl, "broken", 0, 0, 0)
			if err := kerr.ErrorForCode(r.ErrorCode); !errors.Is(err, tc.want) || len(r.RecordBatches) != 0 {
				t.Fatalf("fetch from the %s object: %v, %d bytes; want %v and nothing", tc.name, err, len(r.RecordBatches), tc.want)
			}
			// The log names the object, so an operator knows what is
			// broken.
			var named bool
			for _, line := range strings.Split(logs.String(), "\n") {
				named = named || strings.Contains(line, "level=ERROR") && strings.Contains(line, keys[0])
			}
			if !named {
				t.Fatalf("no error log line names the %s object %s; the log:\n%s", tc.name, keys[0], logs.String())
			}
			if r := fetchRaw(t, cl, "kept", 0, 0, 0); r.ErrorCode != 0 || len(r.RecordBatches) == 0 {
				t.Fatalf("a healthy partition after the failed fetch: %v, %d bytes", kerr.ErrorForCode(r.ErrorCode), len(r.RecordBatches))
			}
			// Again: the failure is neither cached as a success nor stuck
			// to the connection.
			if r := fetchRaw(t, cl, "broken", 0, 0, 0); !errors.Is(kerr.ErrorForCode(r.ErrorCode), tc.want) {
				t.Fatalf("second fetch from the %s object: %v", tc.name, kerr.ErrorForCode(r.ErrorCode))
			}
		})
	}
}

// A RecordBatch's length field that disagrees with its bytes, inside a
// produce request whose own framing is fine: CORRUPT_MESSAGE for that
// partition, nothing written, and the next good batch goes through.
func TestProduceRejectsWrongBatchLengths(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastFlush)
	createTopic(t, c, "lengths", 1, nil)
	cl := c.client()

	good := recordBatch(-1, -1, -1, "a", "b")
	withLength := func(n int32) []byte {
		b := bytes.Clone(good)
		binary.BigEndian.PutUint32(b[8:12], uint32(n))
		return b
	}
	actual := int32(len(good) - 12)
	for _, tc := range []struct {
		name  string
		batch []byte
	}{
		{"zero", withLength(0)},
		{"negative", withLength(-1)},
		{"below a header", withLength(20)},
		{"one byte short", withLength(actual - 1)},
		{"a record short", withLength(actual - 8)},
		{"one byte long", withLength(actual + 1)},
		{"2 GiB", withLength(1<<31 - 1)},
		{"second batch one byte short", append(bytes.Clone(good), withLength(actual-1)...)},
		{"second batch truncated", append(bytes.Clone(good), good[:len(good)/2]...)},
		{"trailing garbage", append(bytes.Clone(good), 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := produceRaw(t, cl, "lengths", 0, tc.batch)
			if err := kerr.ErrorForCode(r.ErrorCode); !errors.Is(err, kerr.CorruptMessage) {
				t.Fatalf("got %v, want CORRUPT_MESSAGE", err)
			}
		})
	}
	if r := produceRaw(t, cl, "lengths", 0, good); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("a good batch after the bad ones: %v at %d; want offset 0 (nothing else written)", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
}
