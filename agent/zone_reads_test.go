package agent_test

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
)

// sharedReads configures agents to share their reads with their zone, in
// chunks small enough that a few MiB make many of them.
func sharedReads(c *testCluster) func(*agent.Config) {
	return func(cfg *agent.Config) {
		cfg.PeerAddr = "127.0.0.1:0"
		cfg.ReadChunkBytes = 128 << 10
		if c.pki != nil {
			cfg.PeerCAFile = c.pki.caFile
		}
	}
}

// bucketGETs is how many ranged GETs an agent's fetches made.
func bucketGETs(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "floe_fetch_get_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// peerReads is an agent's floe_fetch_peer_reads_total{result}.
func peerReads(reg *prometheus.Registry, result string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "floe_fetch_peer_reads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// produceKeyed writes n keyed records of 1 KiB (incompressible) through
// a client.
func produceKeyed(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	ctx := testCtx(t)
	for i := range n {
		value := make([]byte, 1024)
		rand.Read(value)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// readAllInGroup reads n records of topic from the start in a new group.
func readAllInGroup(t *testing.T, cl *kgo.Client, n int) error {
	ctx := testCtx(t)
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		got += fs.NumRecords()
	}
	return nil
}

// The agents of a zone share their reads: three consumer groups in zone
// a, reading a topic through both of its agents, cost the zone about as
// many GETs as one group reading it through a lone agent (zone c), and
// the zone's agents ask each other, never the other zone's.
func TestZoneSharesItsReads(t *testing.T) {
	c := newTestCluster(t)
	var regs []*prometheus.Registry
	var agents []*agent.Agent
	for _, zone := range []string{"a", "a", "b", "c"} {
		reg := prometheus.NewRegistry()
		c.registry = reg
		agents = append(agents, c.addAgent(func(cfg *agent.Config) {
			sharedReads(c)(cfg)
			cfg.Zone = zone
		}))
		regs = append(regs, reg)
	}
	// 64 partitions: each flush object holds extents of 64 KiB or so,
	// read in chunks of 128 KiB.
	createTopic(t, c, "shared", 64, nil)
	const records = 4000 // 4 MiB: 30-odd chunks
	produceKeyed(t, c.clientAt(agents[2].Addr(), kgo.ClientID("writer,floe_az=b")), "shared", records)

	consumer := func(at *agent.Agent, zone, group string) *kgo.Client {
		return c.clientAt(at.Addr(), kgo.ClientID("reader,floe_az="+zone), kgo.ConsumerGroup(group),
			kgo.ConsumeTopics("shared"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	}
	// One group through zone c's lone agent: the GETs of a cold read.
	if err := readAllInGroup(t, consumer(agents[3], "c", "alone"), records); err != nil {
		t.Fatal(err)
	}
	alone := bucketGETs(t, regs[3])
	if alone < 10 {
		t.Fatalf("a lone agent read the topic with %d GETs: want the chunks to be many, for the test to mean anything", alone)
	}

	// Three groups at once through zone a's two agents.
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for g := range 3 {
		cl := consumer(agents[0], "a", fmt.Sprint("zone-a-", g))
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readAllInGroup(t, cl, records)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	zoneA := bucketGETs(t, regs[0]) + bucketGETs(t, regs[1])
	t.Logf("GETs: lone agent, one group %d; zone a, two agents, three groups %d (%d + %d); peer reads %0.f + %0.f",
		alone, zoneA, bucketGETs(t, regs[0]), bucketGETs(t, regs[1]), peerReads(regs[0], "ok"), peerReads(regs[1], "ok"))
	for i := range 2 {
		if metricValue(t, regs[i], "floe_fetch_bytes_total") == 0 {
			t.Fatalf("zone a's agent %d served no records: both must, for the test to mean anything", i)
		}
		if n := peerReads(regs[i], "failed"); n != 0 {
			t.Errorf("zone a's agent %d: %v peer reads failed", i, n)
		}
	}
	if float64(zoneA) > 1.2*float64(alone)+1 {
		t.Errorf("zone a made %d GETs for three groups; one group through one agent made %d: want at most 1.2 times", zoneA, alone)
	}
	if peerReads(regs[0], "ok")+peerReads(regs[1], "ok") == 0 {
		t.Error("zone a's agents never read from each other")
	}
	for i, reg := range regs[2:] {
		if n := metricValue(t, reg, "floe_fetch_peer_served_total") + peerReads(reg, "ok"); n != 0 {
			t.Errorf("agent %d (zone %s) took part in %v peer reads: peers stay in their zone", i+2, []string{"b", "c"}[i], n)
		}
	}
}

// An agent whose zone peer cannot be reached reads the bucket itself, and
// the peer listener serves only agents holding the cluster's secret.
func TestZoneReadsFallBackToTheBucket(t *testing.T) {
	c := newTestCluster(t)
	var regs []*prometheus.Registry
	var agents []*agent.Agent
	for i := range 2 {
		reg := prometheus.NewRegistry()
		c.registry = reg
		agents = append(agents, c.addAgent(func(cfg *agent.Config) {
			sharedReads(c)(cfg)
			cfg.Zone = "a"
			if i == 1 {
				cfg.PeerAdvertiseAddr = "127.0.0.1:1" // nobody listens there
			}
		}))
		regs = append(regs, reg)
	}
	createTopic(t, c, "fallback", 8, nil)
	const records = 2000
	produceKeyed(t, c.clientAt(agents[0].Addr()), "fallback", records)
	// A zone a group reads through both agents: about half of the chunks
	// are agent 1's, which agent 0 cannot reach.
	if err := readAllInGroup(t, c.clientAt(agents[0].Addr(), kgo.ClientID("floe_az=a"), kgo.ConsumerGroup("g"),
		kgo.ConsumeTopics("fallback"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), records); err != nil {
		t.Fatal(err)
	}
	failed := peerReads(regs[0], "failed") + peerReads(regs[1], "failed")
	if failed == 0 {
		t.Error("no peer read failed: agent 1's peer address is dead, and agent 0 should have tried it")
	}

	// The peer listener.
	ctx := testCtx(t)
	infos, err := c.store.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	peerAddr := ""
	for _, info := range infos {
		if info.Zone == "a" && info.Peer != "127.0.0.1:1" {
			peerAddr = info.Peer
		}
	}
	if peerAddr == "" {
		t.Fatalf("no agent of zone a published a peer address: %+v", infos)
	}
	secret, err := c.store.PeerSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hc, scheme := http.DefaultClient, "http"
	if c.pki != nil {
		hc, scheme = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.pki.pool}}}, "https"
	}
	ask := func(token string, q url.Values) (int, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+peerAddr+"/floe/peer/v1/range?"+q.Encode(), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	good := url.Values{"object": {"no/such/object"}, "start": {"0"}, "end": {"10"}}
	for _, tc := range []struct {
		name  string
		token string
		q     url.Values
		want  int
	}{
		{"no secret", "", good, http.StatusUnauthorized},
		{"a wrong secret", "not-" + secret, good, http.StatusUnauthorized},
		{"a range ending before its start", secret, url.Values{"object": {"x"}, "start": {"10"}, "end": {"5"}}, http.StatusBadRequest},
		{"no object", secret, url.Values{"start": {"0"}, "end": {"5"}}, http.StatusBadRequest},
		{"a missing object", secret, good, http.StatusNotFound},
	} {
		if code, body := ask(tc.token, tc.q); code != tc.want {
			t.Errorf("%s: status %d (%s), want %d", tc.name, code, strings.TrimSpace(body), tc.want)
		}
	}
}

// A zoned client's group is coordinated through an agent of its zone:
// FindCoordinator names one, which forwards the group's requests to the
// coordinator when that is in another zone. Members join, consume and
// commit without a byte between them and the other zone's agents, and
// the coordinator sees them as themselves (commits land in the group).
func TestZonedGroupsAreCoordinatedInTheirZone(t *testing.T) {
	for _, protocol := range []string{"classic", "consumer"} {
		t.Run(protocol, func(t *testing.T) {
			testZonedCoordination(t, protocol)
		})
	}
}

// testZonedCoordination runs a zoned group (of the classic or consumer
// protocol) and a zoned transactional producer whose coordinators are in
// the other zone.
func testZonedCoordination(t *testing.T, protocol string) {
	{
		{
			c := newTestCluster(t)
			var regs []*prometheus.Registry
			var agents []*agent.Agent
			for _, zone := range []string{"a", "a", "b", "b"} {
				reg := prometheus.NewRegistry()
				c.registry = reg
				agents = append(agents, c.addAgent(func(cfg *agent.Config) {
					sharedReads(c)(cfg)
					fastConsumerGroups(cfg)
					cfg.Zone = zone
				}))
				regs = append(regs, reg)
			}
			ctx := testCtx(t)
			adm := c.admin()
			md := c.waitBrokers(4)
			zoneOf := map[int32]string{}
			for _, b := range md.Brokers {
				zoneOf[b.NodeID] = *b.Rack
			}
			// A group and a transactional ID coordinated in zone b.
			group, txnID := "", ""
			for i := 0; group == "" || txnID == ""; i++ {
				name := fmt.Sprint("zoned-", i)
				cs := adm.FindGroupCoordinators(ctx, name)
				ts := adm.FindTxnCoordinators(ctx, name)
				if err := errors.Join(cs.Error(), ts.Error()); err != nil {
					t.Fatal(err)
				}
				if zoneOf[cs[name].NodeID] == "b" && group == "" {
					group = name
				}
				if zoneOf[ts[name].NodeID] == "b" && txnID == "" {
					txnID = name
				}
			}
			createTopic(t, c, "zoned-group", 4, nil)
			zoned := []kgo.Opt{kgo.ClientID("svc,floe_az=a")}
			// 200 records in two transactions, one aborted.
			txp := c.clientAt(agents[0].Addr(), append(zoned, kgo.TransactionalID(txnID), kgo.DefaultProduceTopic("zoned-group"))...)
			for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
				if err := txp.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for i := range 200 {
					txp.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte("v")}, func(_ *kgo.Record, err error) {
						if err != nil {
							t.Error(err)
						}
					})
				}
				if err := txp.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if err := txp.EndTransaction(ctx, commit); err != nil {
					t.Fatal(err)
				}
			}
			tc := kadm.NewClient(txp).FindTxnCoordinators(ctx, txnID)
			if zoneOf[tc[txnID].NodeID] != "a" {
				t.Errorf("the zoned producer was told node %d (zone %q) coordinates its transactions", tc[txnID].NodeID, zoneOf[tc[txnID].NodeID])
			}

			opts := append(zoned, kgo.ConsumerGroup(group), kgo.ConsumeTopics("zoned-group"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if protocol == "consumer" {
				opts = append(opts, kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer()))
			}
			cons := c.clientAt(agents[0].Addr(), opts...)
			if err := readAllInGroup(t, cons, 200); err != nil {
				t.Fatal(err)
			}
			if err := cons.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatal(err)
			}
			zc := kadm.NewClient(cons).FindGroupCoordinators(ctx, group)
			if zoneOf[zc[group].NodeID] != "a" {
				t.Errorf("the zoned client was told node %d (zone %q) coordinates its group", zc[group].NodeID, zoneOf[zc[group].NodeID])
			}
			cons.Close()

			offsets, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				t.Fatal(err)
			}
			// Each partition's commit is past the aborted records, their
			// abort marker and the committed records, short of the commit
			// marker: 400 records and one marker in each of 4 partitions.
			var committed int64
			offsets.Each(func(o kadm.OffsetResponse) { committed += o.At })
			if want := int64(400 + 4); committed != want {
				t.Errorf("the group committed offsets summing to %d, want %d", committed, want)
			}
			forwards := metricValue(t, regs[0], "floe_agent_coordinator_forwards_total") + metricValue(t, regs[1], "floe_agent_coordinator_forwards_total")
			if forwards == 0 {
				t.Error("zone a's agents forwarded no group request")
			}
			if n := metricValue(t, regs[0], "floe_agent_coordinator_forward_errors_total") + metricValue(t, regs[1], "floe_agent_coordinator_forward_errors_total"); n != 0 {
				t.Errorf("%v forwards failed", n)
			}
			if n := clientBytes(t, regs[2], "a", "") + clientBytes(t, regs[3], "a", ""); n != 0 {
				t.Errorf("zone b's agents exchanged %.0f bytes with zone a's clients", n)
			}
			t.Logf("%s group %s, transactional ID %s: %v requests forwarded", protocol, group, txnID, forwards)
		}
	}
}
