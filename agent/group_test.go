package agent_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floe-io/floe/agent"
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
