package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/floe-io/floe/metadata/embedded"
	"github.com/floe-io/floe/segments"
)

var (
	embeddedOnce sync.Once
	embeddedEP   string
	embeddedErr  error
)

// EtcdEndpoints returns etcd client endpoints for tests: the localstack
// etcd when FLOE_TEST_ETCD_ENDPOINTS is set, else an embedded etcd shared by
// every test in this test binary (its data lives in a temporary directory
// removed when the process exits is not guaranteed; the OS temp dir is
// used).
func EtcdEndpoints(t testing.TB) []string {
	t.Helper()
	if eps := os.Getenv("FLOE_TEST_ETCD_ENDPOINTS"); eps != "" {
		return strings.Split(eps, ",")
	}
	embeddedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "floe-test-etcd-")
		if err != nil {
			embeddedErr = err
			return
		}
		srv, err := embedded.Start(embedded.Config{Dir: dir, UnsafeNoFsync: true})
		if err != nil {
			embeddedErr = err
			return
		}
		embeddedEP = srv.Endpoint()
		// The server lives for the rest of the test binary.
	})
	if embeddedErr != nil {
		t.Fatalf("starting embedded etcd: %v", embeddedErr)
	}
	return []string{embeddedEP}
}

// Etcd returns a client connected to the test etcd, closed when the test
// ends.
func Etcd(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   EtcdEndpoints(t),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("connecting to etcd: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Get(ctx, "health"); err != nil {
		t.Fatalf("etcd at %v not answering: %v", EtcdEndpoints(t), err)
	}
	return cli
}

// Cluster returns a fresh cluster name, so tests sharing one etcd never see
// each other's keys.
func Cluster(t testing.TB) string {
	var b [6]byte
	rand.Read(b[:])
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return "test-" + name + "-" + hex.EncodeToString(b[:])
}

// MinIOConfig names a running MinIO and a bucket in it.
type MinIOConfig struct {
	Endpoint  string // host:port
	AccessKey string
	SecretKey string
	Bucket    string
}

// MinIO returns the localstack MinIO, or skips the test (fails it under
// FLOE_TEST_REQUIRE_LOCALSTACK=1) when none is configured.
func MinIO(t testing.TB) MinIOConfig {
	t.Helper()
	cfg := MinIOConfig{
		Endpoint:  os.Getenv("FLOE_TEST_MINIO_ENDPOINT"),
		AccessKey: os.Getenv("FLOE_TEST_MINIO_ACCESS_KEY"),
		SecretKey: os.Getenv("FLOE_TEST_MINIO_SECRET_KEY"),
		Bucket:    os.Getenv("FLOE_TEST_MINIO_BUCKET"),
	}
	if cfg.Endpoint == "" {
		if os.Getenv("FLOE_TEST_REQUIRE_LOCALSTACK") == "1" {
			t.Fatal("FLOE_TEST_MINIO_ENDPOINT is unset but FLOE_TEST_REQUIRE_LOCALSTACK=1: start localstack (localstack/start.sh)")
		}
		t.Skip("skipped: no MinIO (set FLOE_TEST_MINIO_ENDPOINT or run `make test`)")
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "floe-test"
	}
	return cfg
}

// Logger is the logger for agents and compactors under test: warnings and
// errors go into the test's output (shown when it fails, or with -v), and
// with FLOE_TEST_LOG set everything goes to stderr. What it logs must stop
// before the test ends (the components' Cleanup shutdowns see to that).
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("FLOE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// BucketURL is a bucket for one test: the localstack MinIO under a fresh
// prefix when one is configured, else a temporary directory. Open it with
// BucketOptions.
func BucketURL(t testing.TB) string {
	t.Helper()
	if os.Getenv("FLOE_TEST_MINIO_ENDPOINT") == "" {
		return t.TempDir()
	}
	m := MinIO(t)
	return "minio://" + m.Endpoint + "/" + m.Bucket + "/" + Cluster(t) + "?secure=false"
}

// BucketOptions are the credentials of the buckets BucketURL names.
func BucketOptions() segments.BucketOptions {
	return segments.BucketOptions{AccessKey: os.Getenv("FLOE_TEST_MINIO_ACCESS_KEY"), SecretKey: os.Getenv("FLOE_TEST_MINIO_SECRET_KEY")}
}

// Bucket opens a bucket for one test (BucketURL), emptied and closed when
// the test ends.
func Bucket(t testing.TB) segments.Bucket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := segments.OpenBucket(ctx, BucketURL(t), BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		segments.DeletePrefix(ctx, b, "")
		b.Close()
	})
	return b
}
