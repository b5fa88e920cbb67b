package agent_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/metadata"
)

// testPKI is a CA and a server certificate for 127.0.0.1, written to files
// as the agent reads them.
type testPKI struct {
	certFile, keyFile, caFile string
	pool                      *x509.CertPool
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{ca: ca, caKey: caKey, pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	certDER, keyDER := p.issue(t, pkix.Name{CommonName: "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	p.certFile = writePEM(t, dir, "server.pem", "CERTIFICATE", certDER)
	p.keyFile = writePEM(t, dir, "server-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func (p *testPKI) issue(t *testing.T, subject pkix.Name, usage x509.ExtKeyUsage) (certDER, keyDER []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return der, kder
}

func (p *testPKI) clientCert(t *testing.T, cn string) tls.Certificate {
	certDER, keyDER := p.issue(t, pkix.Name{CommonName: cn, Organization: []string{"floe"}}, x509.ExtKeyUsageClientAuth)
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// secureCluster is one agent with a SASL_SSL listener (ACLs enforced, User:admin
// a super user) and users admin, alice and bob.
func secureCluster(t *testing.T, mod func(*agent.Config)) (*testCluster, *agent.Agent, *testPKI) {
	t.Helper()
	return secureClusterOn(t, newTestCluster(t), mod)
}

func secureClusterOn(t *testing.T, c *testCluster, mod func(*agent.Config)) (*testCluster, *agent.Agent, *testPKI) {
	t.Helper()
	pki := newTestPKI(t)
	ctx := testCtx(t)
	for _, user := range []string{"admin", "alice", "bob"} {
		for _, mech := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
			cred := scramCred(t, mech, user+"-secret")
			if err := c.store.SetScramCredential(ctx, user, mech, cred); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := c.addAgent(func(cfg *agent.Config) {
		fastFlush(cfg)
		cfg.Groups.InitialRebalanceDelay = 50 * time.Millisecond
		cfg.Listeners = []agent.ListenerConfig{
			{Protocol: agent.ProtocolSASLSSL, Addr: "127.0.0.1:0"},
			{Protocol: agent.ProtocolSASLPlaintext, Addr: "127.0.0.1:0"},
		}
		cfg.Security = agent.SecurityConfig{
			TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile,
			SuperUsers: []string{"User:admin"}, Authorize: true,
			FailedAuthDelay: 10 * time.Millisecond,
		}
		if mod != nil {
			mod(cfg)
		}
	})
	return c, a, pki
}

func scramCred(t *testing.T, mech, password string) metadata.ScramCredential {
	t.Helper()
	h, _ := metadata.ScramHash(mech)
	salt := []byte("0123456789abcdef")
	salted, err := pbkdf2.Key(h, password, salt, 4096, h().Size())
	if err != nil {
		t.Fatal(err)
	}
	cred, err := metadata.NewScramCredential(mech, salt, salted, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func saslClient(t *testing.T, addr string, pki *testPKI, mech sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.RetryTimeout(3 * time.Second), kgo.MetadataMinAge(10 * time.Millisecond)}
	if pki != nil {
		base = append(base, kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}))
	}
	if mech != nil {
		base = append(base, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func scram256(user string) sasl.Mechanism {
	return scram.Auth{User: user, Pass: user + "-secret"}.AsSha256Mechanism()
}

func TestSASLMechanismsOverTLS(t *testing.T) {
	_, a, pki := secureCluster(t, nil)
	addr := a.ListenerAddr(agent.ProtocolSASLSSL)
	ctx := testCtx(t)
	for name, mech := range map[string]sasl.Mechanism{
		"SCRAM-SHA-256": scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism(),
		"PLAIN":         plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			adm := kadm.NewClient(saslClient(t, addr, pki, mech))
			if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t-"+name); err != nil {
				t.Fatalf("admin over %s: %v", name, err)
			}
		})
	}
	for name, mech := range map[string]sasl.Mechanism{
		"wrong SCRAM password": scram.Auth{User: "admin", Pass: "nope"}.AsSha256Mechanism(),
		"unknown SCRAM user":   scram.Auth{User: "mallory", Pass: "x"}.AsSha512Mechanism(),
		"wrong PLAIN password": plain.Auth{User: "admin", Pass: "nope"}.AsMechanism(),
	} {
		t.Run(name, func(t *testing.T) {
			err := saslClient(t, addr, pki, mech).Ping(ctx)
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(saslClient(t, addr, pki, nil)).ListTopics(pctx); err == nil {
			t.Fatal("a client without credentials was served")
		}
	})
	t.Run("PLAIN refused without TLS", func(t *testing.T) {
		err := saslClient(t, a.ListenerAddr(agent.ProtocolSASLPlaintext), nil, plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()).Ping(ctx)
		if !errors.Is(err, kerr.UnsupportedSaslMechanism) {
			t.Fatalf("PLAIN over SASL_PLAINTEXT: %v", err)
		}
		// SCRAM is fine there.
		if err := saslClient(t, a.ListenerAddr(agent.ProtocolSASLPlaintext), nil, scram256("admin")).Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestACLsGateEverything(t *testing.T) {
	_, a, pki := secureCluster(t, nil)
	addr := a.ListenerAddr(agent.ProtocolSASLSSL)
	ctx := testCtx(t)
	admin := kadm.NewClient(saslClient(t, addr, pki, scram256("admin")))
	for _, name := range []string{"alice-orders", "bob-orders"} {
		if _, err := admin.CreateTopic(ctx, 1, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	alice := saslClient(t, addr, pki, scram256("alice"), kgo.RequestRetries(0), kgo.RecordRetries(1), kgo.UnknownTopicRetries(0))
	aliceAdm := kadm.NewClient(alice)

	// Authenticated, but no ACLs: nothing.
	if topics, err := aliceAdm.ListTopics(ctx); err != nil || len(topics) != 0 {
		t.Fatalf("alice without ACLs sees %v (%v)", topics.Names(), err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "alice-orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce without ACLs: %v", err)
	}

	// WRITE on the prefix alice- lets her produce there and nowhere else.
	acl := kadm.NewACLs().Allow("User:alice").Topics("alice-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpWrite)
	if res, err := admin.CreateACLs(ctx, acl); err != nil || res[0].Err != nil {
		t.Fatalf("creating ACL: %v %v", err, res)
	}
	// A new client: the first one's metadata loop may still hold an answer
	// given before the ACL existed, which would fail the next record
	// client-side (Kafka's brokers would be read the same way).
	alice = saslClient(t, addr, pki, scram256("alice"), kgo.RequestRetries(0), kgo.RecordRetries(1), kgo.UnknownTopicRetries(0))
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "alice-orders", Value: []byte("hers")}).FirstErr(); err != nil {
		t.Fatalf("alice produce to alice-orders: %v", err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "bob-orders", Value: []byte("not hers")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce to bob-orders: %v", err)
	}
	described, err := admin.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow("User:alice").AllowHosts().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
	if err != nil || len(described) == 0 || len(described[0].Described) != 1 {
		t.Fatalf("describe ACLs: %v %+v", err, described)
	}

	// Reading needs READ on the topic and, in a group, READ on the group.
	consume := func(group string) error {
		opts := []kgo.Opt{kgo.ConsumeTopics("alice-orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		if group != "" {
			opts = append(opts, kgo.ConsumerGroup(group))
		}
		cl := saslClient(t, addr, pki, scram256("alice"), opts...)
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for {
			fs := cl.PollFetches(pctx)
			if err := fs.Err0(); err != nil {
				return err
			}
			if fs.NumRecords() > 0 {
				return nil
			}
		}
	}
	if err := consume(""); err == nil {
		t.Fatal("alice read without a READ ACL")
	}
	admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("alice-orders").Operations(kadm.OpRead))
	if err := consume(""); err != nil {
		t.Fatalf("alice read with READ: %v", err)
	}
	if err := consume("alice-group"); !errors.Is(err, kerr.GroupAuthorizationFailed) {
		t.Fatalf("alice group consume without group READ: %v", err)
	}
	admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Groups("alice-group").Operations(kadm.OpRead))
	if err := consume("alice-group"); err != nil {
		t.Fatalf("alice group consume with group READ: %v", err)
	}

	// Deny wins over allow.
	admin.CreateACLs(ctx, kadm.NewACLs().Deny("User:alice").Topics("alice-orders").Operations(kadm.OpWrite))
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "alice-orders", Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice produce after a DENY: %v", err)
	}

	// Bob is not an admin: he cannot manage ACLs or users.
	bobAdm := kadm.NewClient(saslClient(t, addr, pki, scram256("bob")))
	if res, err := bobAdm.CreateACLs(ctx, kadm.NewACLs().Allow("User:bob").Topics("bob-orders").Operations(kadm.OpAll)); err == nil && res[0].Err == nil {
		t.Fatal("bob created an ACL")
	}
	if _, err := bobAdm.DeleteTopics(ctx, "bob-orders"); err != nil {
		t.Fatal(err)
	}
	if topics, _ := admin.ListTopics(ctx); !topics.Has("bob-orders") {
		t.Fatal("bob deleted a topic without DELETE")
	}

	// Deleting ACLs takes effect.
	if res, err := admin.DeleteACLs(ctx, kadm.NewACLs().Deny("User:alice").DenyHosts().Topics("alice-orders").Operations(kadm.OpWrite)); err != nil || len(res) == 0 || len(res[0].Deleted) != 1 {
		t.Fatalf("delete ACL: %v %+v", err, res)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Topic: "alice-orders", Value: []byte("again")}).FirstErr(); err != nil {
		t.Fatalf("alice produce after the DENY went: %v", err)
	}
}

func TestUserSCRAMAdmin(t *testing.T) {
	c, a, pki := secureCluster(t, nil)
	addr := a.ListenerAddr(agent.ProtocolSASLSSL)
	ctx := testCtx(t)
	admin := kadm.NewClient(saslClient(t, addr, pki, scram256("admin")))
	res, err := admin.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "carol-pw"}})
	if err != nil || res["carol"].Err != nil {
		t.Fatalf("alter SCRAM: %v %+v", err, res)
	}
	desc, err := admin.DescribeUserSCRAMs(ctx, "carol")
	if err != nil || desc["carol"].Err != nil || len(desc["carol"].CredInfos) != 1 || desc["carol"].CredInfos[0].Iterations != 8192 {
		t.Fatalf("describe SCRAM: %v %+v", err, desc)
	}
	carol := saslClient(t, addr, pki, scram.Auth{User: "carol", Pass: "carol-pw"}.AsSha512Mechanism())
	if err := carol.Ping(ctx); err != nil {
		t.Fatalf("carol: %v", err)
	}
	// Only salted hashes are stored.
	creds, err := c.store.UserCredentials(ctx, "carol")
	if err != nil || len(creds[metadata.ScramSHA512].StoredKey) != 64 {
		t.Fatalf("stored: %v %+v", err, creds)
	}
	if _, err := admin.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "carol", Mechanism: kadm.ScramSha512}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := saslClient(t, addr, pki, scram.Auth{User: "carol", Pass: "carol-pw"}.AsSha512Mechanism()).Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted user: %v", err)
	}
}

func TestClientCertificatePrincipal(t *testing.T) {
	var pki *testPKI
	c := newTestCluster(t)
	pki = newTestPKI(t)
	a := c.addAgent(func(cfg *agent.Config) {
		cfg.Listeners = []agent.ListenerConfig{{Protocol: agent.ProtocolSSL, Addr: "127.0.0.1:0"}}
		cfg.Security = agent.SecurityConfig{TLSCertFile: pki.certFile, TLSKeyFile: pki.keyFile, TLSClientCAFile: pki.caFile, TLSRequireClientCert: true, Authorize: true}
	})
	ctx := testCtx(t)
	cert := pki.clientCert(t, "dave")
	mk := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RetryTimeout(3*time.Second),
			kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	if _, err := kadm.NewClient(mk()).CreateTopic(ctx, 1, 1, nil, "certs"); err == nil {
		t.Fatal("a certificate principal without ACLs created a topic")
	}
	if _, err := c.store.CreateACLs(ctx, []metadata.ACL{{ResourceType: metadata.ACLResourceCluster, ResourceName: "kafka-cluster", PatternType: metadata.ACLPatternLiteral,
		Principal: "User:CN=dave,O=floe", Host: "*", Operation: metadata.ACLOpCreate, Permission: metadata.ACLPermissionAllow}}, 128); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the agent's view follows the ACL
	if r, err := kadm.NewClient(mk()).CreateTopic(ctx, 1, 1, nil, "certs"); err != nil || r.Err != nil {
		t.Fatalf("User:CN=dave,O=floe with CREATE: %v %v", err, r.Err)
	}
}

func TestReauthenticationKeepsLongConnectionsWorking(t *testing.T) {
	c0 := newTestCluster(t)
	reg := prometheus.NewRegistry()
	c0.registry = reg
	_, a, pki := secureClusterOn(t, c0, func(cfg *agent.Config) {
		cfg.Security.SessionLifetime = time.Second
	})
	addr := a.ListenerAddr(agent.ProtocolSASLSSL)
	ctx := testCtx(t)
	// franz-go re-authenticates before the session lifetime the agent
	// announced passes (KIP-368): requests keep working past it.
	adm := kadm.NewClient(saslClient(t, addr, pki, scram256("admin")))
	for i := range 4 {
		if _, err := adm.ListTopics(ctx); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	// More authentications than connections: the client re-authenticated.
	var auths, conns float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "floe_agent_sasl_authentications_total":
				auths += m.GetCounter().GetValue()
			case "floe_agent_connections":
				conns += m.GetGauge().GetValue()
			}
		}
	}
	if auths <= conns {
		t.Fatalf("%v authentications on %v connections over 2.8s with a 1s session lifetime: no re-authentication", auths, conns)
	}
}
