package agent_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/metadata"
)

// fastGroups makes group timings short enough for tests.
func fastGroups(cfg *agent.Config) {
	fastFlush(cfg)
	cfg.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	cfg.Groups.MinSessionTimeout = 100 * time.Millisecond
}

// consumer is a franz-go group member polling in the background, tracking
// the partitions it owns through the rebalance callbacks.
type consumer struct {
	t      *testing.T
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	owned    map[string]map[int32]bool
	assigns  int // OnPartitionsAssigned calls
	revokes  int // OnPartitionsRevoked and OnPartitionsLost calls
	records  []*kgo.Record
	closed   bool
	onRecord func(*kgo.Record)
}

// joinGroup starts a consumer in group on topics. It polls (and so
// heartbeats and fetches) until stopped.
func (c *testCluster) joinGroup(group string, topics []string, opts ...kgo.Opt) *consumer {
	c.t.Helper()
	m := &consumer{t: c.t, owned: map[string]map[int32]bool{}, done: make(chan struct{})}
	var seeds []string
	for _, a := range c.agents {
		seeds = append(seeds, a.Addr())
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.RetryTimeout(15 * time.Second),
		kgo.MetadataMinAge(10 * time.Millisecond),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.SessionTimeout(3 * time.Second),
		kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.assigns++
			for t, parts := range ps {
				if m.owned[t] == nil {
					m.owned[t] = map[int32]bool{}
				}
				for _, p := range parts {
					m.owned[t][p] = true
				}
			}
		}),
		kgo.OnPartitionsRevoked(m.drop),
		kgo.OnPartitionsLost(m.drop),
	}
	base = append(base, c.clientOpts()...)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				m.mu.Lock()
				m.records = append(m.records, r)
				fn := m.onRecord
				m.mu.Unlock()
				if fn != nil {
					fn(r)
				}
			})
		}
	}()
	c.t.Cleanup(m.stop)
	return m
}

func (m *consumer) drop(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.revokes++
	for t, parts := range ps {
		for _, p := range parts {
			delete(m.owned[t], p)
		}
	}
}

// stop closes the client, which leaves the group (unless it is a static
// member).
func (m *consumer) stop() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.cl.Close()
	<-m.done
}

// partitions returns the partitions of topic the member owns, sorted.
func (m *consumer) partitions(topic string) []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned[topic]))
}

func (m *consumer) callbacks() (assigns, revokes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.assigns, m.revokes
}

// balanced reports whether members together own each of topic's n
// partitions exactly once, each owning per partitions (or per and per+1
// when they do not divide evenly).
func balanced(topic string, n int, members ...*consumer) bool {
	seen := map[int32]bool{}
	lo, hi := n/len(members), (n+len(members)-1)/len(members)
	for _, m := range members {
		ps := m.partitions(topic)
		if len(ps) < lo || len(ps) > hi {
			return false
		}
		for _, p := range ps {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	return len(seen) == n
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestGroupSharesPartitionsAndRebalancesWhenAMemberLeaves(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "six", 6, nil)

	m1 := c.joinGroup("g", []string{"six"})
	m2 := c.joinGroup("g", []string{"six"})
	m3 := c.joinGroup("g", []string{"six"})
	waitFor(t, 20*time.Second, func() bool { return balanced("six", 6, m1, m2, m3) }, "3 members own 2 partitions each")

	// One leaves; the other two cover all six.
	m3.stop()
	took := waitFor(t, 20*time.Second, func() bool { return balanced("six", 6, m1, m2) }, "2 members own 3 partitions each")
	t.Logf("rebalance after a member left (3 -> 2 members, heartbeat interval 100ms): %s", took)
}

func TestGroupWithMoreMembersThanPartitionsLeavesSomeIdle(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "two", 2, nil)
	ms := []*consumer{
		c.joinGroup("g", []string{"two"}),
		c.joinGroup("g", []string{"two"}),
		c.joinGroup("g", []string{"two"}),
	}
	waitFor(t, 20*time.Second, func() bool {
		seen := map[int32]int{}
		idle := 0
		for _, m := range ms {
			ps := m.partitions("two")
			if len(ps) == 0 {
				idle++
			}
			for _, p := range ps {
				seen[p]++
			}
		}
		return idle == 1 && seen[0] == 1 && seen[1] == 1
	}, "two members own one partition each and one is idle")
}

// commitSync commits offsets through cl's group membership.
func commitSync(t *testing.T, cl *kgo.Client, topic string, at map[int32]int64) {
	t.Helper()
	os := map[int32]kgo.EpochOffset{}
	for p, o := range at {
		os[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var err error
	cl.CommitOffsetsSync(testCtx(t), map[string]map[int32]kgo.EpochOffset{topic: os}, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
		err = cerr
		if err == nil {
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					if e := kerr.ErrorForCode(rp.ErrorCode); e != nil {
						err = e
					}
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("committing through the group: %v", err)
	}
}

func TestGroupRemovesAMemberThatStopsHeartbeating(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "t", 4, nil)
	// A static member does not leave the group when it closes, so it
	// just goes silent.
	silent := c.joinGroup("g", []string{"t"}, kgo.InstanceID("silent"), kgo.SessionTimeout(time.Second))
	m := c.joinGroup("g", []string{"t"})
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 4, silent, m) }, "2 members own 2 partitions each")
	silent.stop()
	took := waitFor(t, 20*time.Second, func() bool { return balanced("t", 4, m) }, "the remaining member owns all 4")
	if took < 500*time.Millisecond {
		t.Fatalf("the silent member was removed after %s, before its 1s session timeout", took)
	}
	d, err := c.admin().DescribeGroups(testCtx(t), "g")
	if err != nil || len(d["g"].Members) != 1 {
		t.Fatalf("members after expiry: %+v %v", d["g"].Members, err)
	}
}

func TestStaticMemberRestartKeepsItsPartitionsWithoutRebalance(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastGroups)
	createTopic(t, c, "t", 4, nil)
	s1 := c.joinGroup("g", []string{"t"}, kgo.InstanceID("one"))
	s2 := c.joinGroup("g", []string{"t"}, kgo.InstanceID("two"))
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 4, s1, s2) }, "2 static members own 2 partitions each")
	before := s1.partitions("t")
	_, gen := s2.cl.GroupMetadata()
	s2Assigns, s2Revokes := s2.callbacks()

	s1.stop() // static: no LeaveGroup
	again := c.joinGroup("g", []string{"t"}, kgo.InstanceID("one"))
	waitFor(t, 20*time.Second, func() bool { return slices.Equal(again.partitions("t"), before) }, "the restarted member has its partitions back")

	// The other member saw nothing happen.
	time.Sleep(300 * time.Millisecond)
	if a, r := s2.callbacks(); a != s2Assigns || r != s2Revokes {
		t.Fatalf("the other member was rebalanced: assigns %d->%d revokes %d->%d", s2Assigns, a, s2Revokes, r)
	}
	if _, g := s2.cl.GroupMetadata(); g != gen {
		t.Fatalf("generation moved from %d to %d", gen, g)
	}
	if _, g := again.cl.GroupMetadata(); g != gen {
		t.Fatalf("restarted member is at generation %d, want %d", g, gen)
	}
}

// twoAgents starts two agents with fastGroups and waits until the
// cluster lists both.
func (c *testCluster) twoAgents() [2]*agent.Agent {
	c.t.Helper()
	agents := [2]*agent.Agent{c.addAgent(fastGroups), c.addAgent(fastGroups)}
	c.waitBrokers(2)
	return agents
}

// waitBrokers waits until the cluster's Metadata lists n brokers, and
// returns that answer. It sends Metadata requests of its own: kadm's
// BrokerMetadata answers from the client's cached broker list, which may
// be an agent's answer from before it saw the last agent register.
func (c *testCluster) waitBrokers(n int) *kmsg.MetadataResponse {
	c.t.Helper()
	cl := c.client()
	var m *kmsg.MetadataResponse
	waitUntil(c.t, func() bool {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		var err error
		m, err = req.RequestWith(testCtx(c.t), cl)
		return err == nil && len(m.Brokers) == n
	}, fmt.Sprintf("%d agents listed", n))
	return m
}

// shutDownCoordinator shuts down whichever of agents coordinates group
// and returns the other.
func shutDownCoordinator(t *testing.T, adm *kadm.Client, group string, agents [2]*agent.Agent) (survivor *agent.Agent) {
	t.Helper()
	ctx := testCtx(t)
	co := adm.FindGroupCoordinators(ctx, group)[group]
	if co.Err != nil {
		t.Fatal(co.Err)
	}
	coordinator, survivor := agents[0], agents[1]
	if co.NodeID == agents[1].NodeID() {
		coordinator, survivor = agents[1], agents[0]
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := coordinator.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("shut down coordinator node %d", co.NodeID)
	return survivor
}

func TestGroupSurvivesItsCoordinatorShuttingDown(t *testing.T) {
	c := newTestCluster(t)
	agents := c.twoAgents()
	createTopic(t, c, "t", 4, nil)
	ctx := testCtx(t)
	adm := c.admin()

	// The session timeout must cover a client's own failover: a failed
	// heartbeat, FindCoordinator, backoff and, over SASL_SSL, a new
	// handshake. 1s, 3s and then 6s (Kafka's group.min.session.timeout.ms)
	// were too short on a loaded 2-core machine running the race detector
	// and the whole suite; Kafka's default is 45s.
	const session = 12 * time.Second
	m1 := c.joinGroup("g", []string{"t"}, kgo.SessionTimeout(session))
	m2 := c.joinGroup("g", []string{"t"}, kgo.SessionTimeout(session))
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 4, m1, m2) }, "2 members own 2 partitions each")
	commit := map[int32]int64{}
	for i, p := range m1.partitions("t") {
		commit[p] = int64(100 + i)
	}
	commitSync(t, m1.cl, "t", commit)
	id1, gen := m1.cl.GroupMetadata()
	id2, _ := m2.cl.GroupMetadata()
	a1Before, r1Before := m1.callbacks()
	a2Before, r2Before := m2.callbacks()

	survivor := shutDownCoordinator(t, adm, "g", agents)

	// The survivor loads the group: same generation and members, no
	// rebalance, and the members' heartbeats keep them in past their
	// session timeout.
	surv := kadm.NewClient(c.clientAt(survivor.Addr()))
	var d kadm.DescribedGroup
	waitUntil(t, func() bool {
		ds, err := surv.DescribeGroups(ctx, "g")
		d = ds["g"]
		return err == nil && d.Err == nil && d.Coordinator.NodeID == survivor.NodeID()
	}, "the surviving agent coordinates the group")
	time.Sleep(session + 500*time.Millisecond)
	ds, err := surv.DescribeGroups(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	d = ds["g"]
	ids := []string{d.Members[0].MemberID, d.Members[len(d.Members)-1].MemberID}
	slices.Sort(ids)
	want := []string{id1, id2}
	slices.Sort(want)
	if d.State != "Stable" || len(d.Members) != 2 || !slices.Equal(ids, want) {
		t.Fatalf("after failover: state %s members %+v, want %v", d.State, d.Members, want)
	}
	if _, g := m1.cl.GroupMetadata(); g != gen {
		t.Fatalf("generation moved from %d to %d", gen, g)
	}
	if a, r := m1.callbacks(); a != a1Before || r != r1Before {
		t.Fatalf("member 1 was rebalanced: assigns %d->%d revokes %d->%d", a1Before, a, r1Before, r)
	}
	if a, r := m2.callbacks(); a != a2Before || r != r2Before {
		t.Fatalf("member 2 was rebalanced: assigns %d->%d revokes %d->%d", a2Before, a, r2Before, r)
	}
	fetched, err := surv.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range commit {
		if got, _ := fetched.Lookup("t", p); got.At != want {
			t.Fatalf("t/%d committed %d before failover, %d after", p, want, got.At)
		}
	}
	// Commits at the loaded generation go on.
	commitSync(t, m2.cl, "t", map[int32]int64{m2.partitions("t")[0]: 7})
}

func TestGroupMovesToAJoiningAgentWithoutRebalance(t *testing.T) {
	c := newTestCluster(t)
	a0 := c.addAgent(fastGroups)
	createTopic(t, c, "t", 4, nil)
	ctx := testCtx(t)
	// A group that placement gives to the second agent once it joins.
	group := ""
	for i := 0; group == ""; i++ {
		name := fmt.Sprintf("moving-%d", i)
		if l, _ := metadata.Leader([]metadata.AgentInfo{{NodeID: a0.NodeID()}, {NodeID: a0.NodeID() + 1}}, metadata.GroupKey(name)); l.NodeID != a0.NodeID() {
			group = name
		}
	}
	m1 := c.joinGroup(group, []string{"t"})
	m2 := c.joinGroup(group, []string{"t"})
	waitFor(t, 20*time.Second, func() bool { return balanced("t", 4, m1, m2) }, "2 members own 2 partitions each")
	commitSync(t, m1.cl, "t", map[int32]int64{m1.partitions("t")[0]: 42})
	_, gen := m1.cl.GroupMetadata()
	a1Before, r1Before := m1.callbacks()
	a2Before, r2Before := m2.callbacks()

	a1 := c.addAgent(fastGroups)
	if a1.NodeID() != a0.NodeID()+1 {
		t.Fatalf("second agent has node ID %d", a1.NodeID())
	}
	adm := kadm.NewClient(c.clientAt(a1.Addr()))
	waitUntil(t, func() bool {
		ds, err := adm.DescribeGroups(ctx, group)
		d := ds[group]
		return err == nil && d.Err == nil && d.Coordinator.NodeID == a1.NodeID() && d.State == "Stable" && len(d.Members) == 2
	}, "the joining agent coordinates the group, Stable with both members")
	time.Sleep(500 * time.Millisecond)
	if _, g := m1.cl.GroupMetadata(); g != gen {
		t.Fatalf("generation moved from %d to %d", gen, g)
	}
	if a, r := m1.callbacks(); a != a1Before || r != r1Before {
		t.Fatalf("member 1 was rebalanced: assigns %d->%d revokes %d->%d", a1Before, a, r1Before, r)
	}
	if a, r := m2.callbacks(); a != a2Before || r != r2Before {
		t.Fatalf("member 2 was rebalanced: assigns %d->%d revokes %d->%d", a2Before, a, r2Before, r)
	}
	// Commits go through the new coordinator.
	commitSync(t, m2.cl, "t", map[int32]int64{m2.partitions("t")[0]: 43})
	o, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := o.Lookup("t", m1.partitions("t")[0]); got.At != 42 {
		t.Fatalf("offset committed before the move: %+v", got)
	}
	if got, _ := o.Lookup("t", m2.partitions("t")[0]); got.At != 43 {
		t.Fatalf("offset committed after the move: %+v", got)
	}
}
