package agent_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
	"github.com/floe-io/floe/segments"
)

// testCluster is one or more agents sharing an etcd cluster prefix and a
// bucket, as in production.
type testCluster struct {
	t      *testing.T
	store  *metadata.Store
	bucket segments.Bucket
	agents []*agent.Agent
	// registry, when set, receives the next agent's metrics.
	registry *prometheus.Registry
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("FLOE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, testBucketURL(t), testBucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	return &testCluster{t: t, store: store, bucket: bucket}
}

// addAgent starts an agent on a free loopback port. mod may adjust the
// config.
func (c *testCluster) addAgent(mod func(*agent.Config)) *agent.Agent {
	c.t.Helper()
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	deps := agent.Deps{Store: c.store, Bucket: c.bucket, Log: testLogger(c.t)}
	if c.registry != nil {
		deps.Registry = c.registry
		c.registry = nil
	}
	a, err := agent.New(cfg, deps)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		c.t.Fatal(err)
	}
	stopped := false
	c.t.Cleanup(func() {
		if !stopped {
			a.Shutdown(context.Background())
		}
	})
	c.agents = append(c.agents, a)
	return a
}

// client returns a franz-go client bootstrapped at the given agents.
func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	var seeds []string
	for _, a := range c.agents {
		seeds = append(seeds, a.Addr())
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(15 * time.Second), kgo.MetadataMinAge(10 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func (c *testCluster) admin() *kadm.Client {
	return kadm.NewClient(c.client())
}

// testBucketURL is the localstack MinIO (a fresh prefix per test) when
// one is configured, else a temporary directory.
func testBucketURL(t *testing.T) string {
	if os.Getenv("FLOE_TEST_MINIO_ENDPOINT") == "" {
		return t.TempDir()
	}
	m := testenv.MinIO(t)
	return "minio://" + m.Endpoint + "/" + m.Bucket + "/" + testenv.Cluster(t) + "?secure=false"
}

func testBucketOptions() segments.BucketOptions {
	return segments.BucketOptions{AccessKey: os.Getenv("FLOE_TEST_MINIO_ACCESS_KEY"), SecretKey: os.Getenv("FLOE_TEST_MINIO_SECRET_KEY")}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
