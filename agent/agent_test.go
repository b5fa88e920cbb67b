package agent_test

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

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
	// pki is set in secure mode (see secureMode).
	pki *testPKI
}

// secureMode runs the whole protocol suite over SASL_SSL: with
// FLOE_TEST_SECURITY=sasl_ssl every agent listens on SASL_SSL first (and
// PLAINTEXT second, for the raw-frame tests), ACLs are enforced, and test
// clients authenticate with SCRAM-SHA-512 as a super user. `make test` runs
// the agent tests both ways.
var secureMode = os.Getenv("FLOE_TEST_SECURITY") == "sasl_ssl"

const (
	testAdmin         = "admin"
	testAdminPassword = "admin-secret"
)

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	store, err := metadata.NewStore(testenv.Etcd(t), testenv.Cluster(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bucket, err := segments.OpenBucket(ctx, testenv.BucketURL(t), testenv.BucketOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	c := &testCluster{t: t, store: store, bucket: bucket}
	if secureMode {
		c.pki = newTestPKI(t)
		for _, mech := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
			if err := store.SetScramCredential(ctx, testAdmin, mech, scramCred(t, mech, testAdminPassword)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// clientOpts are what every test client needs to reach the cluster's
// agents: in secure mode TLS and SCRAM as the super user.
func (c *testCluster) clientOpts() []kgo.Opt {
	if c.pki == nil {
		return nil
	}
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: c.pki.pool, ServerName: "127.0.0.1"}),
		kgo.SASL(scram.Auth{User: testAdmin, Pass: testAdminPassword}.AsSha512Mechanism()),
	}
}

// skipRawInSecureMode skips a test that speaks raw frames as an
// anonymous PLAINTEXT client: in secure mode ACLs refuse it, and the
// plaintext run of the suite covers it.
func skipRawInSecureMode(t *testing.T) {
	if secureMode {
		t.Skip("skipped in secure mode: raw frames go over PLAINTEXT as User:ANONYMOUS; the plaintext run covers this test")
	}
}

// plainAddr is an agent's PLAINTEXT listener, for tests that write raw
// frames.
func plainAddr(a *agent.Agent) string {
	return a.ListenerAddr(agent.ProtocolPlaintext)
}

// addAgent starts an agent on a free loopback port. mod may adjust the
// config.
func (c *testCluster) addAgent(mod func(*agent.Config)) *agent.Agent {
	c.t.Helper()
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	if c.pki != nil {
		cfg.Listeners = []agent.ListenerConfig{
			{Protocol: agent.ProtocolSASLSSL, Addr: "127.0.0.1:0"},
			{Protocol: agent.ProtocolPlaintext, Addr: "127.0.0.1:0"},
		}
		cfg.Security = agent.SecurityConfig{
			TLSCertFile: c.pki.certFile, TLSKeyFile: c.pki.keyFile,
			SuperUsers: []string{"User:" + testAdmin}, Authorize: true,
		}
	}
	if mod != nil {
		mod(&cfg)
	}
	deps := agent.Deps{Store: c.store, Bucket: c.bucket, Log: testenv.Logger(c.t)}
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

// seedOpts are the options that reach the cluster's agents.
func (c *testCluster) seedOpts() []kgo.Opt {
	var seeds []string
	for _, a := range c.agents {
		seeds = append(seeds, a.Addr())
	}
	return append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(15 * time.Second), kgo.MetadataMinAge(10 * time.Millisecond)}, c.clientOpts()...)
}

// client returns a franz-go client bootstrapped at the given agents.
func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	var seeds []string
	for _, a := range c.agents {
		seeds = append(seeds, a.Addr())
	}
	base := append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RetryTimeout(15 * time.Second), kgo.MetadataMinAge(10 * time.Millisecond)}, c.clientOpts()...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func (c *testCluster) admin() *kadm.Client {
	return kadm.NewClient(c.client())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
