package agent_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/floe-io/floe/agent"
)

// zonedCluster starts four agents, two in zone a and two in zone b, each
// with its own metrics registry.
func zonedCluster(t *testing.T, mod func(*agent.Config)) (*testCluster, []*agent.Agent, []*prometheus.Registry) {
	c := newTestCluster(t)
	var agents []*agent.Agent
	var regs []*prometheus.Registry
	for _, zone := range []string{"a", "a", "b", "b"} {
		reg := prometheus.NewRegistry()
		c.registry = reg
		agents = append(agents, c.addAgent(func(cfg *agent.Config) {
			cfg.Zone = zone
			if mod != nil {
				mod(cfg)
			}
		}))
		regs = append(regs, reg)
	}
	// Every agent sees every other before clients ask.
	c.waitBrokers(4)
	return c, agents, regs
}

// clientBytes sums floe_agent_client_bytes_total for a client zone label
// and a kind ("" for both).
func clientBytes(t *testing.T, reg *prometheus.Registry, clientZone, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != "floe_agent_client_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			zoneOK, kindOK := false, kind == ""
			for _, l := range m.GetLabel() {
				zoneOK = zoneOK || l.GetName() == "client_zone" && l.GetValue() == clientZone
				kindOK = kindOK || l.GetName() == "kind" && l.GetValue() == kind
			}
			if zoneOK && kindOK {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// leaderZones returns the zones of the agents a client is told lead
// topic's partitions.
func leaderZones(t *testing.T, cl *kgo.Client, topic string) map[string]int {
	t.Helper()
	md, err := kadm.NewClient(cl).Metadata(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	zoneOf := map[int32]string{}
	for _, b := range md.Brokers {
		zoneOf[b.NodeID] = *b.Rack
	}
	out := map[string]int{}
	for _, p := range md.Topics[topic].Partitions {
		out[zoneOf[p.Leader]]++
	}
	return out
}

// Zoned clients (client.id floe_az=…, bootstrapped at an agent of their
// zone) produce and consume through agents of their own zone only: every
// byte they exchange is counted by those agents, none by the other
// zone's. Leadership is spread over the zone's agents. A client of a zone
// with no live agent, and a client with no zone, use every agent.
func TestZonedClientsStayInTheirZone(t *testing.T) {
	c, agents, regs := zonedCluster(t, nil)
	createTopic(t, c, "zoned", 8, nil)
	ctx := testCtx(t)

	for zi, zone := range []string{"a", "b"} {
		home := agents[2*zi]
		opts := []kgo.Opt{kgo.ClientID("orders-service,floe_az=" + zone), kgo.MetadataMinAge(10 * time.Millisecond)}
		if lz := leaderZones(t, c.clientAt(home.Addr(), opts...), "zoned"); lz[zone] != 8 {
			t.Fatalf("zone %s client's leaders by zone: %v", zone, lz)
		}
		prod := c.clientAt(home.Addr(), append(opts, kgo.DefaultProduceTopic("zoned"))...)
		for i := range 200 {
			prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}, nil)
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cons := c.clientAt(home.Addr(), append(opts, kgo.ConsumeTopics("zoned"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
		got := 0
		for got < 200*(zi+1) {
			fs := cons.PollFetches(ctx)
			if err := fs.Err0(); err != nil {
				t.Fatal(err)
			}
			got += fs.NumRecords()
		}
	}
	for i, reg := range regs {
		own, other := "a", "b"
		if i >= 2 {
			own, other = "b", "a"
		}
		// Nothing crosses zones: zoned clients know only their zone's
		// agents.
		if n := clientBytes(t, reg, other, ""); n != 0 {
			t.Errorf("agent %d (zone %s) exchanged %.0f bytes with zone %s clients", i, own, n, other)
		}
		if n := clientBytes(t, reg, own, "data"); n == 0 {
			t.Errorf("agent %d (zone %s) served no zone %s client: leadership is not spread", i, own, own)
		}
	}

	// A zone with no live agent falls back to all of them; so does a
	// client with no zone.
	for _, id := range []string{"svc,floe_az=c", "plain-client"} {
		lz := leaderZones(t, c.clientAt(agents[0].Addr(), kgo.ClientID(id)), "zoned")
		if lz["a"] == 0 || lz["b"] == 0 || lz["a"]+lz["b"] != 8 {
			t.Errorf("client %q: leaders by zone %v, want both zones", id, lz)
		}
	}
}

// Clients that name no zone are placed by their address (--zone-cidrs).
func TestZoneByClientAddress(t *testing.T) {
	c, agents, regs := zonedCluster(t, func(cfg *agent.Config) { cfg.ZoneCIDRs = "b=127.0.0.2/32" })
	createTopic(t, c, "by-address", 4, nil)
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 10 * time.Second}
	opts := []kgo.Opt{kgo.SeedBrokers(agents[2].Addr()), kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		nc, err := from.DialContext(ctx, network, host)
		if err != nil || c.pki == nil {
			return nc, err
		}
		return tls.Client(nc, &tls.Config{RootCAs: c.pki.pool, ServerName: "127.0.0.1"}), nil
	})}
	if c.pki != nil {
		opts = append(opts, kgo.SASL(scram.Auth{User: testAdmin, Pass: testAdminPassword}.AsSha512Mechanism()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if lz := leaderZones(t, cl, "by-address"); lz["b"] != 4 {
		t.Fatalf("a client from 127.0.0.2: leaders by zone %v", lz)
	}
	if n := clientBytes(t, regs[2], "b", ""); n == 0 {
		t.Fatal("the zone b agent did not count the client as zone b")
	}
}

// A client that gives only its rack (KIP-392's client.rack) is sent by
// agents of other zones to a replica in its own (replicas are spread over
// zones): every record it reads is served by agents of its zone.
func TestRackedFetchesReadFromTheirZone(t *testing.T) {
	c, agents, regs := zonedCluster(t, nil)
	// Two replicas: one in each zone.
	if r, err := c.admin().CreateTopic(testCtx(t), 8, 2, nil, "racked"); err != nil || r.Err != nil {
		t.Fatalf("creating racked: %v %v", err, r.Err)
	}
	ctx := testCtx(t)
	prod := c.clientAt(agents[0].Addr(), kgo.ClientID("writer,floe_az=a"), kgo.DefaultProduceTopic("racked"))
	for i := range 400 {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("value")}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Unzoned by client ID, so Metadata names leaders in both zones.
	cons := c.client(kgo.Rack("b"), kgo.ConsumeTopics("racked"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if lz := leaderZones(t, cons, "racked"); lz["a"] == 0 {
		t.Fatalf("leaders by zone %v: want some in zone a, for the test to mean anything", lz)
	}
	got := 0
	for got < 400 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		got += fs.NumRecords()
	}
	for i, reg := range regs {
		served := metricValue(t, reg, "floe_fetch_bytes_total")
		if i < 2 && served != 0 {
			t.Errorf("agent %d (zone a) served %.0f record bytes to a zone b client", i, served)
		}
		if i >= 2 && served == 0 {
			t.Logf("agent %d (zone b) served nothing", i)
		}
	}
}

// A zoned client follows its zone's agents as they come and go: when one
// dies the other leads its partitions, when the zone has none left the
// client falls back to the other zone's, and when one returns the
// leadership comes back to the zone.
func TestZonedClientsFollowTheirZoneAcrossAgentDeaths(t *testing.T) {
	c, agents, regs := zonedCluster(t, func(cfg *agent.Config) { cfg.DrainTimeout = time.Second })
	createTopic(t, c, "follow", 4, nil)
	ctx := testCtx(t)
	cl := c.client(kgo.ClientID("svc,floe_az=a"), kgo.DefaultProduceTopic("follow"), kgo.MetadataMinAge(10*time.Millisecond), kgo.MetadataMaxAge(200*time.Millisecond))
	produce := func(n int) {
		t.Helper()
		for i := range n {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	leadersIn := func(zone string) func() bool {
		return func() bool { return leaderZones(t, cl, "follow")[zone] == 4 }
	}
	produce(20)
	bBefore := clientBytes(t, regs[2], "a", "data") + clientBytes(t, regs[3], "a", "data")
	if bBefore != 0 {
		t.Fatalf("zone b agents served %.0f data bytes to zone a", bBefore)
	}

	agents[0].Shutdown(context.Background())
	waitUntil(t, leadersIn("a"), "the other zone a agent leads every partition")
	produce(20)
	if n := clientBytes(t, regs[2], "a", "data") + clientBytes(t, regs[3], "a", "data"); n != 0 {
		t.Fatalf("with one zone a agent left, zone b agents served %.0f data bytes to zone a", n)
	}

	agents[1].Shutdown(context.Background())
	waitUntil(t, leadersIn("b"), "zone b agents lead every partition once zone a has none")
	produce(20)

	c.addAgent(func(cfg *agent.Config) { cfg.Zone = "a" })
	waitUntil(t, leadersIn("a"), "leadership returns to zone a with its new agent")
	produce(20)
}
