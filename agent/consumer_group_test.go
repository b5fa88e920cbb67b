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
)

// fastConsumerGroups makes consumer-protocol heartbeats frequent and
// sessions short, for tests with real clients.
func fastConsumerGroups(cfg *agent.Config) {
	fastGroups(cfg)
	cfg.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	cfg.Groups.ConsumerSessionTimeout = 3 * time.Second
}

// ledger records which member owns each partition, from the members'
// assignment callbacks, and every time a partition was given to a member
// while another still owned it. A consumer-protocol member runs its
// revocation callback before it tells the coordinator it let go, so a
// correct coordinator never makes two owners.
type ledger struct {
	mu         sync.Mutex
	owner      map[string]map[int32]string // topic -> partition -> member
	revoked    map[string]map[string]int   // member -> "topic/partition" -> revocations
	violations []string
	lost       map[string]int           // member -> OnPartitionsLost calls
	gates      map[string]chan struct{} // a member's revocations wait for its gate to close
	waits      map[string]bool          // members waiting at their gates
}

func newLedger() *ledger {
	return &ledger{owner: map[string]map[int32]string{}, revoked: map[string]map[string]int{}, lost: map[string]int{}, gates: map[string]chan struct{}{}, waits: map[string]bool{}}
}

func (l *ledger) assigned(member string, ps map[string][]int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, parts := range ps {
		if l.owner[topic] == nil {
			l.owner[topic] = map[int32]string{}
		}
		for _, p := range parts {
			if o, ok := l.owner[topic][p]; ok && o != member {
				l.violations = append(l.violations, fmt.Sprintf("%s/%d given to %s while %s owns it", topic, p, member, o))
			}
			l.owner[topic][p] = member
		}
	}
}

// gate makes member's revocations wait until the returned func is called.
func (l *ledger) gate(member string) (open func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	l.gates[member] = ch
	return sync.OnceFunc(func() { close(ch) })
}

// revoking reports whether member is waiting at its gate.
func (l *ledger) waiting(member string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waits[member]
}

func (l *ledger) released(member string, ps map[string][]int32, lost bool) {
	l.mu.Lock()
	gate := l.gates[member]
	if gate != nil && !lost {
		l.waits[member] = true
		l.mu.Unlock()
		<-gate
		l.mu.Lock()
		l.waits[member] = false
	}
	defer l.mu.Unlock()
	if lost {
		l.lost[member]++
	}
	if l.revoked[member] == nil {
		l.revoked[member] = map[string]int{}
	}
	for topic, parts := range ps {
		for _, p := range parts {
			if l.owner[topic][p] == member {
				delete(l.owner[topic], p)
			}
			l.revoked[member][fmt.Sprintf("%s/%d", topic, p)]++
		}
	}
}

// owned returns each member's partitions of topic.
func (l *ledger) owned(topic string) map[string][]int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int32{}
	for p, m := range l.owner[topic] {
		out[m] = append(out[m], p)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}

// revocations returns how often member gave up each partition so far.
func (l *ledger) revocations(member string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.revoked[member])
}

func (l *ledger) problems() ([]string, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.violations), maps.Clone(l.lost)
}

// balancedAmong reports whether exactly members own topic's n partitions,
// each as many as balance allows.
func (l *ledger) balancedAmong(topic string, n int, members ...string) bool {
	owned := l.owned(topic)
	total := 0
	for m, ps := range owned {
		if !slices.Contains(members, m) {
			return false
		}
		total += len(ps)
	}
	lo, hi := n/len(members), (n+len(members)-1)/len(members)
	for _, m := range members {
		if k := len(owned[m]); k < lo || k > hi {
			return false
		}
	}
	return total == n
}

// nextGenMember is a franz-go consumer in a consumer-protocol group,
// reporting to a ledger.
type nextGenMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// joinNextGen starts a consumer-protocol member of group; opts name what
// it consumes.
func (c *testCluster) joinNextGen(l *ledger, name, group string, balancer kgo.GroupBalancer, opts ...kgo.Opt) *nextGenMember {
	c.t.Helper()
	return c.joinLedgered(l, name, group, append([]kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(balancer)}, opts...)...)
}

// joinLedgered starts a member of group reporting to l; opts choose its
// protocol and balancer and name what it consumes.
func (c *testCluster) joinLedgered(l *ledger, name, group string, opts ...kgo.Opt) *nextGenMember {
	c.t.Helper()
	m := &nextGenMember{name: name, done: make(chan struct{})}
	base := append(c.seedOpts(),
		kgo.ConsumerGroup(group),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { l.assigned(name, ps) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { l.released(name, ps, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { l.released(name, ps, true) }),
	)
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
		}
	}()
	c.t.Cleanup(m.stop)
	return m
}

// stop leaves the group (a static member leaves with epoch -2).
func (m *nextGenMember) stop() {
	m.once.Do(func() {
		m.cancel()
		m.cl.Close()
		<-m.done
	})
}

func describeConsumerGroup(t *testing.T, cl *kgo.Client, group string) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{group}
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil || len(resp.Groups) != 1 {
		t.Fatalf("ConsumerGroupDescribe: %v", err)
	}
	return resp.Groups[0]
}

// Members join one by one and leave one by one under each server
// assignor: a partition never has two owners, a member never gives up a
// partition it keeps (the rest of the group consumes on while one member
// comes or goes), and the group ends balanced at every step.
func TestConsumerGroupProtocolMembersComeAndGo(t *testing.T) {
	for _, tc := range []struct {
		assignor string
		balancer kgo.GroupBalancer
	}{{"uniform", kgo.CooperativeStickyBalancer()}, {"range", kgo.RangeBalancer()}} {
		t.Run(tc.assignor, func(t *testing.T) {
			c := newTestCluster(t)
			c.addAgent(fastConsumerGroups)
			createTopic(t, c, "ng", 12, nil)
			l := newLedger()
			group := "ng-" + tc.assignor
			var members []*nextGenMember
			names := func() []string {
				out := make([]string, len(members))
				for i, m := range members {
					out[i] = m.name
				}
				return out
			}
			// step runs change and waits until the group is balanced,
			// checking that members in it before and after gave up
			// nothing they kept.
			step := func(what string, change func()) {
				t.Helper()
				before := l.owned("ng")
				revokedBefore := map[string]map[string]int{}
				for _, m := range members {
					revokedBefore[m.name] = l.revocations(m.name)
				}
				change()
				took := waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("ng", 12, names()...) }, what+": the group is balanced")
				after := l.owned("ng")
				for _, m := range members {
					now := l.revocations(m.name)
					for _, p := range after[m.name] {
						key := fmt.Sprintf("ng/%d", p)
						if slices.Contains(before[m.name], p) && now[key] != revokedBefore[m.name][key] {
							t.Fatalf("%s: %s gave up %s, which it kept", what, m.name, key)
						}
					}
				}
				t.Logf("%s: balanced in %s: %v", what, took.Round(time.Millisecond), after)
			}
			for i := range 4 {
				name := fmt.Sprintf("m%d", i)
				step(name+" joins", func() { members = append(members, c.joinNextGen(l, name, group, tc.balancer, kgo.ConsumeTopics("ng"))) })
			}
			d := describeConsumerGroup(t, c.client(), group)
			if d.AssignorName != tc.assignor || d.State != "Stable" || len(d.Members) != 4 {
				t.Fatalf("group after the joins: assignor %q, state %s, %d members", d.AssignorName, d.State, len(d.Members))
			}
			if tc.assignor == "range" {
				// Range gives each member a contiguous run.
				for m, ps := range l.owned("ng") {
					if ps[len(ps)-1]-ps[0] != int32(len(ps)-1) {
						t.Fatalf("range gave %s %v", m, ps)
					}
				}
			}
			for len(members) > 1 {
				leaving := members[0]
				step(leaving.name+" leaves", func() {
					members = members[1:]
					leaving.stop()
				})
			}
			violations, lost := l.problems()
			if len(violations) > 0 || len(lost) > 0 {
				t.Fatalf("two owners: %v; partitions lost (not revoked): %v", violations, lost)
			}
		})
	}
}

// The agent coordinating a group shuts down in the middle of a
// rebalance: a member joined, one member is still revoking partitions
// for it. Another agent takes the group over from etcd; the revocation
// it acknowledges there completes the rebalance, members keep their
// partitions (nothing lost, nothing revoked that they keep), and no
// partition has two owners.
//
// Records keep coming and members commit often: franz-go's
// consumer-protocol heartbeat keeps retrying a coordinator it cannot dial
// and looks it up again only when another request (here, an autocommit)
// fails to dial it.
func TestConsumerGroupSurvivesItsCoordinatorMidRebalance(t *testing.T) {
	slow := func(cfg *agent.Config) {
		fastConsumerGroups(cfg)
		cfg.Groups.ConsumerSessionTimeout = 15 * time.Second
	}
	c := newTestCluster(t)
	c.addAgent(slow)
	c.addAgent(slow)
	createTopic(t, c, "ngf", 8, nil)
	l := newLedger()
	join := func(name string) {
		c.joinNextGen(l, name, "ngf-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("ngf"), kgo.AutoCommitInterval(200*time.Millisecond))
	}
	// Records keep coming to every partition, so members keep committing.
	prod := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	pctx, stopProducing := context.WithCancel(context.Background())
	producing := make(chan struct{})
	go func() {
		defer close(producing)
		for pctx.Err() == nil {
			for p := range int32(8) {
				prod.Produce(pctx, &kgo.Record{Topic: "ngf", Partition: p, Value: []byte("v")}, nil)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() { stopProducing(); <-producing }()
	join("m0")
	join("m1")
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("ngf", 8, "m0", "m1") }, "two members balanced")

	coord := coordinatorOf(t, c, "ngf-group")
	var live *agent.Agent
	for _, a := range c.agents {
		if a != coord {
			live = a
		}
	}
	liveCl := c.client(kgo.SeedBrokers(live.Addr()))
	t.Cleanup(func() {
		if t.Failed() {
			d := describeConsumerGroup(t, liveCl, "ngf-group")
			t.Logf("owned %v; group %s epoch %d/%d", l.owned("ngf"), d.State, d.Epoch, d.AssignmentEpoch)
			for _, m := range d.Members {
				t.Logf("  %s epoch %d assigned %v target %v", m.MemberID, m.MemberEpoch, m.Assignment.TopicPartitions, m.TargetAssignment.TopicPartitions)
			}
		}
	})
	open := l.gate("m0") // m0 holds on to what it is asked to give up
	defer open()
	join("m2")
	waitFor(t, 30*time.Second, func() bool { return l.waiting("m0") && len(l.owned("ngf")["m2"]) > 0 }, "m0 is revoking and m2 owns m1's share")
	if d := describeConsumerGroup(t, c.client(), "ngf-group"); d.State != "Reconciling" {
		t.Fatalf("the group is %s while m0 revokes", d.State)
	}
	coord.Shutdown(context.Background())
	open()

	took := waitFor(t, 60*time.Second, func() bool { return l.balancedAmong("ngf", 8, "m0", "m1", "m2") }, "three members balanced after the failover")
	violations, lost := l.problems()
	if len(violations) > 0 || len(lost) > 0 {
		t.Fatalf("two owners: %v; partitions lost: %v", violations, lost)
	}
	d := describeConsumerGroup(t, liveCl, "ngf-group")
	if d.State != "Stable" || len(d.Members) != 3 {
		t.Fatalf("after the failover: %s with %d members", d.State, len(d.Members))
	}
	t.Logf("the rebalance completed on the new coordinator %s after the old one shut down", took.Round(time.Millisecond))
}

// coordinatorOf returns the agent that coordinates group.
func coordinatorOf(t *testing.T, c *testCluster, group string) *agent.Agent {
	t.Helper()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{group}
	resp, err := req.RequestWith(testCtx(t), c.client())
	if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("FindCoordinator: %v", err)
	}
	for _, a := range c.agents {
		if a.NodeID() == resp.Coordinators[0].NodeID {
			return a
		}
	}
	t.Fatalf("no agent is node %d", resp.Coordinators[0].NodeID)
	return nil
}

// A static member that restarts (leaves with epoch -2, comes back with
// the same instance ID) gets its partitions back with no new group epoch,
// and the other member gives up nothing.
func TestConsumerGroupStaticMemberRestart(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastConsumerGroups)
	createTopic(t, c, "ngs", 6, nil)
	l := newLedger()
	c.joinNextGen(l, "other", "ngs-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("ngs"))
	s := c.joinNextGen(l, "static", "ngs-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("ngs"), kgo.InstanceID("instance-1"))
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("ngs", 6, "other", "static") }, "two members balanced")
	had := l.owned("ngs")["static"]
	otherRevoked := l.revocations("other")
	epoch := describeConsumerGroup(t, c.client(), "ngs-group").Epoch

	s.stop()
	d := describeConsumerGroup(t, c.client(), "ngs-group")
	var left *kmsg.ConsumerGroupDescribeResponseGroupMember
	for i := range d.Members {
		if d.Members[i].InstanceID != nil && *d.Members[i].InstanceID == "instance-1" {
			left = &d.Members[i]
		}
	}
	if left == nil || left.MemberEpoch != -2 || d.Epoch != epoch {
		t.Fatalf("after the static member stopped: member %+v, group epoch %d (was %d)", left, d.Epoch, epoch)
	}
	c.joinNextGen(l, "static-again", "ngs-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("ngs"), kgo.InstanceID("instance-1"))
	waitFor(t, 30*time.Second, func() bool { return slices.Equal(l.owned("ngs")["static-again"], had) }, "the restarted member has its partitions back")
	if d := describeConsumerGroup(t, c.client(), "ngs-group"); d.Epoch != epoch {
		t.Fatalf("group epoch %d after the restart, was %d", d.Epoch, epoch)
	}
	if now := l.revocations("other"); !maps.Equal(now, otherRevoked) {
		t.Fatalf("the other member gave up partitions: %v, was %v", now, otherRevoked)
	}
}

// A member subscribed by regex is assigned a topic created after it
// joined, resolved by the coordinator.
func TestConsumerGroupRegexSubscription(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastConsumerGroups)
	createTopic(t, c, "re-one", 2, nil)
	createTopic(t, c, "other", 2, nil)
	l := newLedger()
	c.joinNextGen(l, "m", "ngr-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeRegex(), kgo.ConsumeTopics("^re-.*"))
	waitFor(t, 30*time.Second, func() bool { return len(l.owned("re-one")["m"]) == 2 }, "the member owns re-one")
	createTopic(t, c, "re-two", 3, nil)
	waitFor(t, 30*time.Second, func() bool { return len(l.owned("re-two")["m"]) == 3 }, "the member owns re-two, created after it joined")
	if len(l.owned("other")) != 0 {
		t.Fatalf("the member owns %v of a topic its regex does not match", l.owned("other"))
	}
	d := describeConsumerGroup(t, c.client(), "ngr-group")
	if len(d.Members) != 1 || d.Members[0].SubscribedTopicRegex == nil {
		t.Fatalf("described member: %+v", d.Members)
	}
}

// A live classic group moves to the consumer protocol when a
// consumer-protocol member joins it, and back when that member leaves:
// classic members keep consuming throughout (served from the server's
// assignment while the group is a consumer-protocol group), no partition
// has two owners, and no member loses partitions.
func TestConsumerGroupUpgradesAndDowngradesLive(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastConsumerGroups)
	createTopic(t, c, "mig", 6, nil)
	l := newLedger()
	classic := func(name string) *nextGenMember {
		return c.joinLedgered(l, name, "mig-group", kgo.ConsumeTopics("mig"), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	}
	classic("c0")
	classic("c1")
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mig", 6, "c0", "c1") }, "two classic members balanced")
	cl := c.client()

	next := c.joinNextGen(l, "n0", "mig-group", kgo.CooperativeStickyBalancer(), kgo.ConsumeTopics("mig"))
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mig", 6, "c0", "c1", "n0") }, "the upgraded group balanced over three members")
	d := describeConsumerGroup(t, cl, "mig-group")
	types := map[int8]int{}
	for _, m := range d.Members {
		types[m.MemberType]++
	}
	if d.ErrorCode != 0 || len(d.Members) != 3 || types[0] != 2 || types[1] != 1 {
		t.Fatalf("upgraded group: error %d, members by type %v", d.ErrorCode, types)
	}

	next.stop()
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mig", 6, "c0", "c1") }, "the downgraded group balanced over the classic members")
	waitFor(t, 30*time.Second, func() bool {
		described, err := kadm.NewClient(cl).DescribeGroups(testCtx(t), "mig-group")
		if err != nil {
			t.Fatal(err)
		}
		g := described["mig-group"]
		return g.Err == nil && g.State == "Stable" && len(g.Members) == 2
	}, "DescribeGroups shows a Stable classic group of two")
	violations, lost := l.problems()
	if len(violations) > 0 || len(lost) > 0 {
		t.Fatalf("two owners: %v; partitions lost: %v", violations, lost)
	}
}

// Classic members, eager and cooperative, join a consumer-protocol group
// and are served from the server's assignment beside consumer-protocol
// members, one partition owner at a time.
func TestConsumerGroupServesClassicMembers(t *testing.T) {
	c := newTestCluster(t)
	c.addAgent(fastConsumerGroups)
	createTopic(t, c, "mixed", 9, nil)
	l := newLedger()
	c.joinNextGen(l, "n0", "mixed-group", kgo.RangeBalancer(), kgo.ConsumeTopics("mixed"))
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mixed", 9, "n0") }, "n0 owns everything")
	classic := func(name string, b ...kgo.GroupBalancer) *nextGenMember {
		return c.joinLedgered(l, name, "mixed-group", kgo.ConsumeTopics("mixed"), kgo.Balancers(b...),
			kgo.SessionTimeout(3*time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	}
	eager := classic("eager", kgo.RangeBalancer())
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mixed", 9, "n0", "eager") }, "n0 and an eager classic member balanced")
	// Classic members must share a protocol, as in a classic group.
	classic("coop", kgo.CooperativeStickyBalancer(), kgo.RangeBalancer())
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mixed", 9, "n0", "eager", "coop") }, "three members of two protocols balanced")
	if d := describeConsumerGroup(t, c.client(), "mixed-group"); d.ErrorCode != 0 || d.State != "Stable" || d.AssignorName != "range" {
		t.Fatalf("mixed group: %v %s assignor %q", kerr.ErrorForCode(d.ErrorCode), d.State, d.AssignorName)
	}
	eager.stop()
	waitFor(t, 30*time.Second, func() bool { return l.balancedAmong("mixed", 9, "n0", "coop") }, "balanced after the eager member left")
	violations, _ := l.problems()
	if len(violations) > 0 {
		t.Fatalf("two owners: %v", violations)
	}
}
