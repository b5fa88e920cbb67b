package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
	"github.com/floe-io/floe/internal/testenv"
	"github.com/floe-io/floe/metadata"
)

// Timings shared by both protocols, so neither is favoured: classic
// members heartbeat every rebalanceBenchHeartbeat (their own setting),
// consumer-protocol members because the agent tells them to
// (group.consumer.heartbeat.interval.ms); sessions and rebalance
// timeouts are equal too.
const (
	rebalanceBenchPartitions = 200
	rebalanceBenchMembers    = 50
	rebalanceBenchRounds     = 5 // join and leave events per iteration
	rebalanceBenchHeartbeat  = 500 * time.Millisecond
	rebalanceBenchSession    = 10 * time.Second
	rebalanceBenchRebalance  = 30 * time.Second
	// rebalanceBenchQuiet is how long a balanced group must go without an
	// ownership change before an event counts as absorbed.
	rebalanceBenchQuiet   = 4 * rebalanceBenchHeartbeat
	rebalanceBenchTimeout = 2 * time.Minute
)

// BenchmarkGroupRebalance measures how a group of 50 members consuming a
// topic of 200 partitions absorbs one member joining and one member
// leaving, under each group protocol and assignor:
//
//   - classic-eager: JoinGroup/SyncGroup with franz-go's range balancer,
//     which stops the world (every member gives up everything);
//   - classic-cooperative: the same with the cooperative-sticky balancer
//     (incremental, in two rebalances);
//   - consumer-uniform, consumer-range: KIP-848's ConsumerGroupHeartbeat
//     with the agent's uniform and range assignors.
//
// One agent, with etcd and MinIO from localstack. The 50 members join
// once per sub-benchmark, untimed. Each iteration then runs five rounds
// of: a 51st member joins; the longest-standing member but the first
// (which leads a classic group) leaves. Each event comes at a random
// point of the heartbeat interval. Ownership comes from the members'
// OnPartitionsAssigned/Revoked/Lost callbacks. An event is
// absorbed when every partition has exactly one owner among the members,
// each owning as many as balance allows, and nothing changes for 2 s.
// Per event, averaged over its rounds:
//
//   - join-ms, leave-ms: from the event (the new client created; the
//     leaving client told to close) to the last ownership change;
//   - join-paused-partition-s, leave-paused-partition-s: the sum over
//     partitions of the time they had no owner during the event (a
//     leaving member's partitions are ownerless from the moment it is
//     told to close): what the event cost consumption;
//   - join-moved-partitions, leave-moved-partitions: partitions whose
//     owner is not the one they had before the event.
//
// ns/op counts the rounds' waits for quiet too; read the metrics.
// Heartbeats every 500 ms, sessions 10 s, rebalance timeouts 30 s:
//
//	. .cache/localstack/env
//	go test -run '^$' -bench BenchmarkGroupRebalance -benchtime 1x ./agent/
func BenchmarkGroupRebalance(b *testing.B) {
	if os.Getenv("FLOE_TEST_ETCD_ENDPOINTS") == "" || os.Getenv("FLOE_TEST_MINIO_ENDPOINT") == "" {
		b.Skip("skipped: needs localstack's etcd and MinIO (run localstack/start.sh, then . .cache/localstack/env): a rebalance writes the group's state to etcd at every step")
	}
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"classic-eager", []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
		{"classic-cooperative", []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"consumer-uniform", []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.CooperativeStickyBalancer())}},
		{"consumer-range", []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer())}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.Logf("heartbeat %s (classic: the members' kgo.HeartbeatInterval; consumer protocol: the agent's ConsumerHeartbeatInterval), session %s, rebalance timeout %s, %d members, %d partitions",
				rebalanceBenchHeartbeat, rebalanceBenchSession, rebalanceBenchRebalance, rebalanceBenchMembers, rebalanceBenchPartitions)
			g := newRebalanceGroup(b, tc.name, tc.opts)

			// The first member joins alone, so it leads a classic group
			// and is never the one to leave; the others join at once.
			g.join("m0")
			g.settle("m0 joins")
			for i := 1; i < rebalanceBenchMembers; i++ {
				g.join(fmt.Sprintf("m%d", i))
			}
			g.settle(fmt.Sprintf("%d members join", rebalanceBenchMembers))
			if doubles := g.l.doubleOwners(); len(doubles) > 0 {
				b.Fatalf("partitions given to a member while another owned them: %v", doubles)
			}

			var joins, leaves []rebalanceEvent
			next := rebalanceBenchMembers
			for b.Loop() {
				for range rebalanceBenchRounds {
					name := fmt.Sprintf("m%d", next)
					next++
					join := g.event(name+" joins", func() { g.join(name) })
					leaving := g.members[1]
					leave := g.event(leaving.name+" leaves", func() { g.leave(leaving) })
					joins, leaves = append(joins, join), append(leaves, leave)
					b.Logf("%s joins: %s; %s leaves: %s", name, join, leaving.name, leave)
				}
			}
			report := func(what string, events []rebalanceEvent) {
				var took, paused time.Duration
				moved := 0
				for _, e := range events {
					took += e.took
					paused += e.paused
					moved += e.moved
				}
				n := float64(len(events))
				b.ReportMetric(float64(took.Milliseconds())/n, what+"-ms")
				b.ReportMetric(paused.Seconds()/n, what+"-paused-partition-s")
				b.ReportMetric(float64(moved)/n, what+"-moved-partitions")
			}
			report("join", joins)
			report("leave", leaves)
			if lost := g.l.lostCalls(); lost > 0 {
				b.Logf("OnPartitionsLost was called %d times (members fenced or their sessions expired)", lost)
			}
		})
	}
}

// rebalanceGroup is a group of franz-go members on one agent, and the
// ledger of who owns what.
type rebalanceGroup struct {
	b       *testing.B
	addr    string
	group   string
	opts    []kgo.Opt
	l       *ownershipLedger
	members []*rebalanceMember // in join order, the ones still in the group
}

type rebalanceMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func newRebalanceGroup(b *testing.B, name string, opts []kgo.Opt) *rebalanceGroup {
	b.Helper()
	store, err := metadata.NewStore(testenv.Etcd(b), testenv.Cluster(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg := agent.Config{KafkaAddr: "127.0.0.1:0", LeaseTTL: 2 * time.Second, DrainTimeout: 5 * time.Second}
	cfg.Groups.InitialRebalanceDelay = 50 * time.Millisecond
	cfg.Groups.ConsumerHeartbeatInterval = rebalanceBenchHeartbeat
	cfg.Groups.ConsumerSessionTimeout = rebalanceBenchSession
	a, err := agent.New(cfg, agent.Deps{Store: store, Bucket: testenv.Bucket(b), Log: testenv.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Shutdown(context.Background()) })
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	const topic = "rebalance"
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, rebalanceBenchPartitions, 1, nil, topic); err != nil || r.Err != nil {
		b.Fatalf("creating %s: %v %v", topic, err, r.Err)
	}
	g := &rebalanceGroup{b: b, addr: a.Addr(), group: "rebalance-" + name, opts: opts, l: newOwnershipLedger(rebalanceBenchPartitions)}
	// Registered after the agent's shutdown, so it runs first: members
	// leave while their coordinator is there to hear it.
	b.Cleanup(func() {
		var wg sync.WaitGroup
		for _, m := range g.members {
			wg.Go(m.stop)
		}
		wg.Wait()
	})
	return g
}

// join starts a member, which polls (and so heartbeats) until it leaves.
func (g *rebalanceGroup) join(name string) {
	g.b.Helper()
	g.l.join(name)
	m := &rebalanceMember{name: name, done: make(chan struct{})}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(g.addr),
		kgo.ConsumerGroup(g.group),
		kgo.ConsumeTopics("rebalance"),
		kgo.HeartbeatInterval(rebalanceBenchHeartbeat),
		kgo.SessionTimeout(rebalanceBenchSession),
		kgo.RebalanceTimeout(rebalanceBenchRebalance),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { g.l.assigned(name, ps["rebalance"]) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			g.l.released(name, ps["rebalance"], false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			g.l.released(name, ps["rebalance"], true)
		}),
	}, g.opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		g.b.Fatal(err)
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
	g.members = append(g.members, m)
}

// leave takes m out of the ledger's members (its partitions are ownerless
// from now) and closes its client, which leaves the group.
func (g *rebalanceGroup) leave(m *rebalanceMember) {
	g.l.depart(m.name)
	g.members = slices.DeleteFunc(g.members, func(o *rebalanceMember) bool { return o == m })
	m.stop()
}

func (m *rebalanceMember) stop() {
	m.once.Do(func() {
		m.cancel()
		m.cl.Close()
		<-m.done
	})
}

// rebalanceEvent is what one join or leave cost.
type rebalanceEvent struct {
	took   time.Duration // from the event to the last ownership change
	paused time.Duration // summed over partitions: time without an owner
	moved  int           // partitions whose owner changed
}

// event runs change and measures how the group absorbs it.
func (g *rebalanceGroup) event(what string, change func()) rebalanceEvent {
	g.b.Helper()
	// A classic group's members heartbeat in step (each rebalance restarts
	// their timers together), so how long a rebalance takes depends on
	// where in their interval the event falls; settling ends a whole
	// number of intervals after the last change. Start at a random point.
	time.Sleep(rand.N(rebalanceBenchHeartbeat))
	before, start := g.l.begin()
	change()
	last := g.settle(what)
	e := rebalanceEvent{took: last.Sub(start), paused: g.l.pausedSince(), moved: g.l.movedSince(before)}
	if doubles := g.l.doubleOwners(); len(doubles) > 0 {
		g.b.Fatalf("%s: partitions given to a member while another owned them: %v", what, doubles)
	}
	return e
}

func (e rebalanceEvent) String() string {
	return fmt.Sprintf("absorbed in %s, %.2f partition-s without an owner, %d partitions moved", e.took.Round(time.Millisecond), e.paused.Seconds(), e.moved)
}

// settle waits until the group is balanced and has had no ownership
// change for rebalanceBenchQuiet, and returns when the last change was.
func (g *rebalanceGroup) settle(what string) time.Time {
	g.b.Helper()
	deadline := time.Now().Add(rebalanceBenchTimeout)
	for {
		if time.Now().After(deadline) {
			g.b.Fatalf("%s: not balanced after %s: %s", what, rebalanceBenchTimeout, g.l.summary())
		}
		ok, changes, _ := g.l.state()
		if !ok {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		time.Sleep(rebalanceBenchQuiet)
		if ok, now, last := g.l.state(); ok && now == changes {
			return last
		}
	}
}

// ownershipLedger records which member owns each partition of one topic,
// from the members' callbacks, and for how long partitions had no owner.
type ownershipLedger struct {
	mu       sync.Mutex
	owner    []string    // partition -> member; "" for none
	since    []time.Time // partition -> when it lost its owner
	members  map[string]bool
	departed map[string]bool // members told to leave: their callbacks are ignored
	changes  int             // ownership changes so far
	changed  time.Time       // the last one
	lost     int             // OnPartitionsLost calls of members in the group
	doubles  []string        // partitions given to a member while another owned them

	start  time.Time     // the event being measured
	paused time.Duration // ownerless time since start, of partitions owned again
}

func newOwnershipLedger(partitions int) *ownershipLedger {
	now := time.Now()
	l := &ownershipLedger{owner: make([]string, partitions), since: make([]time.Time, partitions), members: map[string]bool{}, departed: map[string]bool{}, start: now}
	for p := range l.since {
		l.since[p] = now
	}
	return l
}

func (l *ownershipLedger) join(member string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.members[member] = true
}

func (l *ownershipLedger) assigned(member string, ps []int32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.departed[member] || len(ps) == 0 {
		return
	}
	now := time.Now()
	for _, p := range ps {
		switch o := l.owner[p]; o {
		case "":
			l.paused += now.Sub(later(l.since[p], l.start))
		case member:
		default:
			l.doubles = append(l.doubles, fmt.Sprintf("%d to %s from %s", p, member, o))
		}
		l.owner[p] = member
	}
	l.changes++
	l.changed = now
}

func (l *ownershipLedger) released(member string, ps []int32, lost bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.departed[member] || len(ps) == 0 {
		return
	}
	if lost {
		l.lost++
	}
	now := time.Now()
	for _, p := range ps {
		if l.owner[p] == member {
			l.owner[p] = ""
			l.since[p] = now
		}
	}
	l.changes++
	l.changed = now
}

// depart drops member: what it owns is ownerless from now.
func (l *ownershipLedger) depart(member string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.departed[member] = true
	delete(l.members, member)
	now := time.Now()
	for p, o := range l.owner {
		if o == member {
			l.owner[p] = ""
			l.since[p] = now
		}
	}
	l.changes++
	l.changed = now
}

// begin starts measuring an event; it returns the owners before it and
// the event's start.
func (l *ownershipLedger) begin() ([]string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start = time.Now()
	l.paused = 0
	return slices.Clone(l.owner), l.start
}

// pausedSince is the ownerless time of partitions since the event began,
// counting those still ownerless up to now.
func (l *ownershipLedger) pausedSince() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	paused := l.paused
	now := time.Now()
	for p, o := range l.owner {
		if o == "" {
			paused += now.Sub(later(l.since[p], l.start))
		}
	}
	return paused
}

func (l *ownershipLedger) movedSince(before []string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	moved := 0
	for p, o := range l.owner {
		if o != before[p] {
			moved++
		}
	}
	return moved
}

// state reports whether every partition has one owner among the members,
// each owning as many as balance allows; and the ownership changes so
// far, and when the last was.
func (l *ownershipLedger) state() (balanced bool, changes int, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.balancedLocked(), l.changes, l.changed
}

func (l *ownershipLedger) balancedLocked() bool {
	if len(l.members) == 0 {
		return false
	}
	counts := map[string]int{}
	for _, o := range l.owner {
		if !l.members[o] {
			return false // no owner, or one that left
		}
		counts[o]++
	}
	lo, hi := len(l.owner)/len(l.members), (len(l.owner)+len(l.members)-1)/len(l.members)
	for m := range l.members {
		if counts[m] < lo || counts[m] > hi {
			return false
		}
	}
	return true
}

// summary describes an unbalanced group.
func (l *ownershipLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	counts := map[string]int{}
	ownerless := 0
	for _, o := range l.owner {
		if o == "" {
			ownerless++
		} else {
			counts[o]++
		}
	}
	return fmt.Sprintf("%d partitions without an owner; partitions per member %v (%d members)", ownerless, counts, len(l.members))
}

func (l *ownershipLedger) doubleOwners() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.doubles)
}

func (l *ownershipLedger) lostCalls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
